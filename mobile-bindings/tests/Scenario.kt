// The mobile scenario from Kotlin on the JVM, against the real library and a real server:
// open a store, log a crew-day offline, start sync, see the listener report "synced",
// read back a head-office approval; attach a photo and upload it; sign-off (a signature, a dispute,
// a crew leader's confirmation), a refused advance and a pay sheet, and a site manager's review on his own phone; then sync over HTTPS with the company's CA, and see a phone that
// does not trust it get a typed TLS error. Arguments: server URL, foreman token, manager token, store
// path, two dates, HTTPS server URL, a foreman token there, the company CA (PEM file); then the site
// mesh: a foreman's and a manager's token of site-hz-01 and a foreman's of another site, for three
// phones that exchange with no server through a pipe written here and over loopback TCP.
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.sitesync_mobile.*

class Recorder : SyncListener {
    @Volatile var last: SyncStatusRecord? = null
    override fun onStatus(status: SyncStatusRecord) { last = status }
}

fun check(ok: Boolean, what: String) { if (!ok) throw AssertionError(what) }

fun main(args: Array<String>) = runBlocking {
    val (url, foremanToken, managerToken, path) = args
    val day1 = args[4]
    val day2 = args[5]
    val site = "site-hz-01"
    val phone = SiteSync.open(path, url, foremanToken, "崔贵")
    phone.syncNow()
    val roster = phone.roster(site)
    val crew = roster.workers.filter { it.crew == "site-hz-01/crew-1" && it.active }.take(3)
    check(crew.size == 3, "three crew-1 workers on the roster")

    // Offline: yesterday by hand, today copied for the whole crew in one call.
    for (w in crew) {
        phone.addLabor(LaborInput(site, day1, w.id, "site-hz-01/wi-4.1", 100L, null, 0L, LaborKindRecord.DAY_LABOR, null, ""), null)
    }
    val copy = phone.copyCrewDay(site, "site-hz-01/crew-1", day1, day2)
    check(copy.created.size == 3, "the crew-day copied: ${copy.created}")
    val sheet = phone.submitDay(site, day2)
    check(sheet.status == DayStatusRecord.SUBMITTED && sheet.labor.size == 3, "submitted")

    // What is due, from the store alone: day1 is still a draft, day2 is submitted.
    val dueThen = phone.due(day1)
    check(dueThen.any { it.kind == DueKind.LOG_NOT_SUBMITTED && it.site == site && it.date == day1 }, "day1's log is due: $dueThen")
    check(phone.due(day2).none { it.kind == DueKind.LOG_NOT_SUBMITTED && it.site == site }, "day2 is submitted")
    check(phone.syncStatus().update == UpdateStateRecord.UP_TO_DATE, "up to date")

    // Bad input is a typed error and changes nothing.
    try {
        phone.addLabor(LaborInput(site, "2026-12-31", crew[0].id, "site-hz-01/wi-4.1", 400L, null, 0L, LaborKindRecord.DAY_LABOR, null, ""), null)
        throw AssertionError("4 work-days were accepted")
    } catch (e: SiteSyncException.Validation) {
        check(e.field == "work_days", "the field is named: ${e.field}")
    }

    // Background sync; the listener says when head office has everything.
    val recorder = Recorder()
    val handle = phone.addSyncListener(recorder)
    phone.startSync()
    withTimeout(30_000) { while (recorder.last?.synced != true) delay(20) }

    // Head office approves through the REST API; the phone receives it live.
    val body = """{"decisions":[{"site":"$site","date":"$day2","decision":"approve"}]}"""
    val request = HttpRequest.newBuilder(URI.create("$url/v1/approvals"))
        .header("Authorization", "Bearer $managerToken").header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build()
    val response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString())
    check(response.statusCode() == 200 && response.body().contains("\"ok\":true"), "approved: ${response.body()}")
    withTimeout(30_000) { while (phone.day(site, day2).status != DayStatusRecord.APPROVED) delay(20) }

    handle.cancel()
    phone.stopSync()
    val totals = phone.totals(site, day1, day2, GroupByRecord.DAY)
    check(totals.total.lines == 6L && totals.rows.size == 2, "totals: $totals")

    // Money: a refused advance (nothing written) and the approved day's pay sheet. (The Python
    // scenario enters an advance and compares its sheet with the server's.)
    try {
        phone.addAdvance(site, crew[0].id, day1, 0L, "")
        throw AssertionError("a zero advance was accepted")
    } catch (e: SiteSyncException.Validation) {
        check(e.field == "amount_fen", "the field is named: ${e.field}")
    }
    check(phone.advances(site, day1).isEmpty(), "advances")
    val pay = phone.paySheet(site, "site-hz-01/crew-1", day2, day2)
    check(pay.total.workDaysCenti == 300L && pay.total.advancesFen == 0L && pay.workers.size == 3, "pay: $pay")
    check(pay.workers.all { it.netFen == it.dayPayFen + it.overtimePayFen + it.piecePayFen }, "net: $pay")

    // A photo attached offline, uploaded beside sync, served back to head office byte for byte.
    val photo = "a photo's bytes".toByteArray()
    val attached = phone.attach(site, day1, photo, "IMG_0001.jpg", "钢筋绑扎", null, null, null, null)
    check(attached.sha256.length == 64, "attached: $attached")
    phone.syncNow()
    check(phone.syncFiles(false).uploaded == 1UL, "uploaded")
    check(phone.attachments(site, day1).map { it.sha256 } == listOf(attached.sha256), "listed")
    val blob = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("$url/v1/blobs/${attached.sha256}")).header("Authorization", "Bearer $managerToken").build(),
        HttpResponse.BodyHandlers.ofByteArray())
    check(blob.statusCode() == 200 && blob.body().contentEquals(photo), "the blob from the server: ${blob.statusCode()}")

    signoffAndReview(url, managerToken, path, phone, site, day1, crew.map { it.id })
    println("kotlin scenario: ok")

    // HTTPS with the company's CA given to open(); a phone without it is refused, and told why.
    val (tlsUrl, tlsToken, caPath) = Triple(args[6], args[7], args[8])
    val ca = java.io.File(caPath).readText()
    val secure = SiteSync.open("$path-tls", tlsUrl, tlsToken, "崔贵", caCertPem = ca)
    secure.syncNow()
    check(secure.roster(site).workers.isNotEmpty(), "the roster arrived over HTTPS")
    val stranger = SiteSync.open("$path-untrusting", tlsUrl, tlsToken, "崔贵")
    try {
        stranger.syncNow()
        throw AssertionError("a certificate of an unknown CA was accepted")
    } catch (e: SiteSyncException.Tls) {
        check(e.reason.contains("does not chain"), "the reason: ${e.reason}")
    }
    println("kotlin scenario over TLS: ok")

    mesh(url, args[9], args[10], args[11], path, java.time.LocalDate.parse(day2).plusDays(5).toString())
    println("kotlin scenario, site mesh over a Kotlin pipe and TCP: ok")
}

// One end of an in-memory byte pipe between two phones: what one end sends, the other receives.
// Closing either end makes both ends' calls fail with the typed TransportClosed.
class PipeEnd(private val inbox: LinkedBlockingQueue<ByteArray>, private val outbox: LinkedBlockingQueue<ByteArray>, private val closed: java.util.concurrent.atomic.AtomicBoolean) : PeerTransport {
    override fun send(bytes: ByteArray) {
        if (closed.get()) throw SiteSyncException.TransportClosed("the pipe is closed")
        outbox.put(bytes)
    }
    override fun receive(): ByteArray {
        while (true) {
            if (closed.get()) throw SiteSyncException.TransportClosed("the pipe is closed")
            inbox.poll(50, TimeUnit.MILLISECONDS)?.let { return it }
        }
    }
    fun close() = closed.set(true)
}

fun pipe(): Pair<PipeEnd, PipeEnd> {
    val (ab, ba) = LinkedBlockingQueue<ByteArray>() to LinkedBlockingQueue<ByteArray>()
    val closed = java.util.concurrent.atomic.AtomicBoolean(false)
    return PipeEnd(ba, ab, closed) to PipeEnd(ab, ba, closed)
}

// `initiator` and `responder` exchange through a pipe, the responder on a Kotlin thread of its own;
// both results (a failure as the exception).
fun overPipe(initiator: SiteSync, responder: SiteSync): Pair<Result<PeerSyncRecord>, Result<PeerSyncRecord>> {
    val (left, right) = pipe()
    var answered: Result<PeerSyncRecord> = Result.failure(AssertionError("the responder did not run"))
    val other = thread { answered = runCatching { runBlocking { responder.syncOverTransport(right) } } }
    val asked = runCatching { runBlocking { initiator.syncOverTransport(left) } }
    other.join(60_000)
    left.close()
    return asked to answered
}

// The site mesh from Kotlin: the foreman logs a day with no server; the manager's phone takes it
// through a pipe written in Kotlin; a phone of another site gets nothing of it; then the same over
// loopback TCP with the library's listener.
suspend fun mesh(url: String, foremanToken: String, managerToken: String, otherToken: String, path: String, day: String) {
    val site = "site-hz-01"
    val a = SiteSync.open("$path-mesh-a", url, foremanToken, "崔贵")
    val b = SiteSync.open("$path-mesh-b", url, managerToken, "龙东江")
    val x = SiteSync.open("$path-mesh-x", url, otherToken, "x")

    // No certificate before the first server sync: a typed error, nothing exchanged.
    val (early, _) = overPipe(a, b)
    check(early.exceptionOrNull() is SiteSyncException.NoDeviceCertificate, "before any sync: $early")

    for (p in listOf(a, b, x)) p.syncNow()
    val workers = a.roster(site).workers.filter { it.crew == "site-hz-01/crew-2" && it.active }.take(2)
    for (w in workers) {
        a.addLabor(LaborInput(site, day, w.id, "site-hz-01/wi-4.1", 100L, null, 0L, LaborKindRecord.DAY_LABOR, null, ""), null)
    }
    check(b.day(site, day).labor.isEmpty(), "B has nothing of the day yet")

    val (sent, taken) = overPipe(a, b)
    val (s, t) = sent.getOrThrow() to taken.getOrThrow()
    check(s.documentsSent >= 1UL && s.changesSent >= 2UL && s.peerUser == "u-manager-hz-01", "A's side: $s")
    check(t.documentsReceived >= 1UL && t.changesAccepted >= 2UL && t.refusedChanges.isEmpty() && t.peerUser == "u-foreman-hz-01", "B's side: $t")
    check(b.day(site, day).labor.map { it.worker }.sorted() == workers.map { it.id }.sorted(), "B holds A's day: ${b.day(site, day)}")
    check(b.syncStatus().pending.isNotEmpty(), "A's day is pending on B for head office")

    // Another site's phone: the exchange runs, and nothing of site-hz-01 crosses.
    val (toX, atX) = overPipe(a, x)
    check(toX.getOrThrow().documentsSent == 0UL && atX.getOrThrow().documentsReceived == 0UL, "to another site: $toX $atX")
    check(site !in x.sites(), "the other site's phone holds no site-hz-01: ${x.sites()}")

    // The app's transport failing: its own typed error comes back.
    val (left, right) = pipe()
    right.close()
    try {
        a.syncOverTransport(left)
        throw AssertionError("an exchange over a closed pipe succeeded")
    } catch (e: SiteSyncException.TransportClosed) {
        check(e.reason == "the pipe is closed", "the app's words: ${e.reason}")
    }

    // Over TCP: B listens, A logs one more line and syncs with B's address; after stop, unreachable.
    val addr = b.startPeerListening("127.0.0.1:0")
    check(b.startPeerListening("127.0.0.1:0") == addr, "started twice: the same listener")
    val third = a.roster(site).workers.filter { it.crew == "site-hz-01/crew-2" && it.active }[2]
    a.addLabor(LaborInput(site, day, third.id, "site-hz-01/wi-4.1", 50L, null, 0L, LaborKindRecord.DAY_LABOR, null, ""), null)
    val overTcp = a.syncWithPeer(addr)
    check(overTcp.documentsSent == 1UL && overTcp.peerUser == "u-manager-hz-01", "over TCP: $overTcp")
    // The dialer is done once it sent and received; the listener applies what it got just after.
    withTimeout(30_000) { while (b.day(site, day).labor.size != 3) delay(20) }
    check(x.syncWithPeer(addr).documentsReceived == 0UL, "another site's phone, over TCP")
    b.stopPeerListening()
    try {
        a.syncWithPeer(addr)
        throw AssertionError("a stopped listener answered")
    } catch (e: SiteSyncException.PeerUnreachable) {}
    for (p in listOf(a, b, x)) p.close()
}


fun getJson(url: String, token: String, pathAndQuery: String): String {
    val request = HttpRequest.newBuilder(URI.create("$url$pathAndQuery")).header("Authorization", "Bearer $token").build()
    val response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString())
    check(response.statusCode() == 200, "$pathAndQuery: ${response.statusCode()} ${response.body()}")
    return response.body()
}

// Sign-off on the foreman's phone and the site manager's review on his own phone, both offline
// between syncs with the real server: a signature, a dispute that blocks approval (typed error), a
// crew leader's confirmation, a rejection, the answer, the resubmission and the approval.
suspend fun signoffAndReview(url: String, managerToken: String, path: String, phone: SiteSync, site: String, day: String, crew: List<String>) {
    val onDay = SignoffPeriod.Day(day)
    val signed = phone.sign(site, onDay, crew[0], "strokes".toByteArray())
    check(signed.size == 1 && signed[0].action == "signed" && signed[0].imageSha256?.length == 64, "signed: $signed")
    val dispute = phone.dispute(site, onDay, crew[1], "只干了半天").single()
    check(dispute.action == "disputed" && dispute.worker == crew[1], "disputed: $dispute")
    val confirmed = phone.confirmCrew(site, onDay, "site-hz-01/crew-1")
    check(confirmed.map { it.crew } == listOf("site-hz-01/crew-1"), "confirmed: $confirmed")
    val states = phone.daySignoffs(site, day).workers.associate { it.worker to it.state }
    check(states == mapOf(crew[0] to SignoffStateRecord.SIGNED, crew[1] to SignoffStateRecord.DISPUTED, crew[2] to SignoffStateRecord.UNSIGNED), "states: $states")
    val badMonth = day.substring(0, 5) + day[6]
    try {
        phone.workerMonth(crew[0], badMonth)
        throw AssertionError("workerMonth accepted $badMonth")
    } catch (e: SiteSyncException.Validation) {
        check(e.field == "month", "the field is named: ${e.field}")
    }
    check(phone.workerMonth(crew[0], day.substring(0, 7)).days.isNotEmpty(), "the month read")
    phone.submitDay(site, day)
    phone.syncNow()

    // The site manager's phone: the day waits with its dispute; approving is refused, rejecting is not.
    val manager = SiteSync.open("$path-manager", url, managerToken, "龙东江")
    manager.syncNow()
    var waiting = manager.reviewQueue(site).filter { it.date == day }
    check(waiting.size == 1 && waiting[0].status == DayStatusRecord.SUBMITTED && waiting[0].openDisputes == 1u, "queue: $waiting")
    try {
        manager.approveDay(site, day)
        throw AssertionError("a day with an open dispute was approved")
    } catch (e: SiteSyncException.DisputeOpen) {
        check(e.dispute == dispute.id, "the dispute is named: ${e.dispute}")
    }
    check(manager.rejectDay(site, day, "请先答复异议").status == DayStatusRecord.REJECTED, "rejected")
    manager.syncNow()

    // The foreman answers, resubmits; the manager approves; head office sees who did.
    phone.syncNow()
    check(phone.day(site, day).status == DayStatusRecord.REJECTED, "the rejection reached the foreman")
    val answer = phone.answerDispute(site, day, dispute.id, "已核对门禁记录")
    check(answer.action == "answered" && answer.answers == dispute.id, "answered: $answer")
    phone.submitDay(site, day)
    phone.syncNow()
    manager.syncNow()
    waiting = manager.reviewQueue(site).filter { it.date == day }
    check(waiting.size == 1 && waiting[0].openDisputes == 0u, "queue after the answer: $waiting")
    check(manager.openConflicts(site, day).isEmpty(), "one phone wrote the day: nothing contested")
    check(manager.approveDay(site, day).status == DayStatusRecord.APPROVED, "approved")
    manager.syncNow()
    check(manager.reviewQueue(site).none { it.date == day }, "nothing left to review")
    val log = getJson(url, managerToken, "/v1/reports/daily-log?site=$site&date=$day&format=json")
    check(log.contains("\"status\":\"approved\"") && log.contains("\"by_name\":\"龙东江\""), "head office's log: $log")
    val onServer = getJson(url, managerToken, "/v1/signoffs?site=$site&date=$day")
    for ((worker, state) in listOf(crew[0] to "signed", crew[1] to "unsigned", crew[2] to "unsigned")) {
        check(Regex("\"worker\":\"$worker\",\"state\":\"$state\"").containsMatchIn(onServer), "$worker $state on the server: $onServer")
    }
    manager.close()
}
