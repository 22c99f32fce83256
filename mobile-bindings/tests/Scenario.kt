// The mobile scenario from Kotlin on the JVM, against the real library and a real server:
// open a store, log a crew-day offline, start sync, see the listener report "synced",
// read back a head-office approval; then sync over HTTPS with the company's CA, and see a phone that
// does not trust it get a typed TLS error. Arguments: server URL, foreman token, manager token, store
// path, two dates, HTTPS server URL, a foreman token there, the company CA (PEM file).
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
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
}
