"""The mobile scenario through the generated Python module, against the real library and a real
server: open a store, log a crew-day offline, start sync, see the listener report "synced", read
back a head-office approval; attach a file and upload it; sign-off (a signature, a dispute, a crew
leader's confirmation) and a site manager's review on his own phone; an advance offline, confirmed by its worker, and the
crew's pay sheet, the same as head office's `GET /v1/pay`; then sync over HTTPS with the company's CA, and see a phone that does
not trust it get a typed TLS error. Arguments: server URL, foreman token, manager token, store
path, two dates, HTTPS server URL, a foreman token there, the company CA (PEM file); then two phones
of site-hz-01 (a foreman's and a manager's token) exchange a day with no server through a pipe
written here (the Kotlin scenario covers TCP and another site's phone)."""
import asyncio
import queue
import threading
import json
import sys
import time
import urllib.parse
import urllib.request

import sitesync_mobile as m


class Recorder(m.SyncListener):
    def __init__(self):
        self.last = None

    def on_status(self, status):
        self.last = status


async def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def main(url, foreman_token, manager_token, path, day1, day2):
    site = "site-hz-01"
    phone = await m.SiteSync.open(path, url, foreman_token, "崔贵")
    await phone.sync_now()
    roster = await phone.roster(site)
    crew = [w for w in roster.workers if w.crew == "site-hz-01/crew-1" and w.active][:3]
    assert len(crew) == 3

    for w in crew:
        await phone.add_labor(m.LaborInput(site=site, date=day1, worker=w.id, work_item="site-hz-01/wi-4.1",
                                           work_days_centi=100, hours_min=None, overtime_min=0,
                                           kind=m.LaborKindRecord.DAY_LABOR, rate_fen=None, note=""), None)
    copy = await phone.copy_crew_day(site, "site-hz-01/crew-1", day1, day2)
    assert len(copy.created) == 3, copy
    sheet = await phone.submit_day(site, day2)
    assert sheet.status == m.DayStatusRecord.SUBMITTED and len(sheet.labor) == 3

    # What is due, from the store alone: day1 is still a draft, day2 is submitted.
    due = [(x.kind, x.site, x.date) for x in await phone.due(day1)]
    assert (m.DueKind.LOG_NOT_SUBMITTED, site, day1) in due, due
    assert not [x for x in await phone.due(day2) if x.kind == m.DueKind.LOG_NOT_SUBMITTED and x.site == site]
    assert (await phone.sync_status()).update == m.UpdateStateRecord.UP_TO_DATE

    try:
        await phone.add_labor(m.LaborInput(site=site, date="2026-02-30", worker=crew[0].id, work_item="site-hz-01/wi-4.1",
                                           work_days_centi=100, hours_min=None, overtime_min=0,
                                           kind=m.LaborKindRecord.DAY_LABOR, rate_fen=None, note=""), None)
        raise AssertionError("an impossible date was accepted")
    except m.SiteSyncError.Validation as e:
        assert e.field == "date", e

    recorder = Recorder()
    handle = phone.add_sync_listener(recorder)
    await phone.start_sync()

    async def synced():
        return recorder.last is not None and recorder.last.synced
    await wait_for(synced)

    body = json.dumps({"decisions": [{"site": site, "date": day2, "decision": "approve"}]}).encode()
    req = urllib.request.Request(f"{url}/v1/approvals", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {manager_token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        answer = json.loads(resp.read())
    assert answer[0]["ok"], answer

    async def approved():
        return (await phone.day(site, day2)).status == m.DayStatusRecord.APPROVED
    await wait_for(approved)
    handle.cancel()
    await phone.stop_sync()
    totals = await phone.totals(site, day1, day2, m.GroupByRecord.DAY)
    assert totals.total.lines == 6 and len(totals.rows) == 2, totals

    # A delivery note attached offline, its file held back on a metered network, then uploaded.
    note = "delivery note: 12 t of rebar".encode()
    a = await phone.attach(site, day1, note, "note.txt", "送货单", None, None, None, None)
    assert a.media_type == "text/plain" and a.transfer.is_queued(), a
    await phone.set_files_unmetered_only(True)
    await phone.sync_now()
    held = await phone.sync_files(True)
    assert held.skipped_metered and held.uploaded == 0, held
    moved = await phone.sync_files(False)
    assert moved.uploaded == 1, moved
    listed = await phone.attachments(site, day1)
    assert [x.sha256 for x in listed] == [a.sha256] and listed[0].transfer.is_on_server(), listed
    req = urllib.request.Request(f"{url}/v1/blobs/{a.sha256}", headers={"Authorization": f"Bearer {manager_token}"})
    with urllib.request.urlopen(req) as resp:
        assert resp.read() == note
    advance = await advances_offline(phone, site, day1, day2, crew)
    await signoff_and_review(url, manager_token, path, phone, site, day1, crew)
    await pay_sheet_as_on_server(url, manager_token, phone, site, day1, day2, crew, advance)
    print("python scenario: ok")


async def advances_offline(phone, site, day1, day2, crew):
    """An advance entered offline on a day not yet submitted; bad ones refused with typed errors,
    writing nothing."""
    advance = await phone.add_advance(site, crew[0].id, day1, 30000, "生活费")
    assert advance.amount_fen == 30000 and advance.worker == crew[0].id and advance.id.startswith("adv-"), advance
    assert advance.entered_by == "崔贵" and advance.note == "生活费", advance
    for bad_worker, bad_date, bad_amount, kind, field in [
        (crew[0].id, day1, 0, m.SiteSyncError.Validation, "amount_fen"),
        (crew[0].id, day1, -500, m.SiteSyncError.Validation, "amount_fen"),
        (crew[0].id, "2026-02-30", 100, m.SiteSyncError.Validation, "date"),
        ("w-9999", day1, 100, m.SiteSyncError.NotFound, None),
        # day2 is approved: its advances are locked with its lines.
        (crew[0].id, day2, 100, m.SiteSyncError.Validation, "amend_reason"),
    ]:
        try:
            await phone.add_advance(site, bad_worker, bad_date, bad_amount, "")
            raise AssertionError(f"an advance {bad_worker} {bad_date} {bad_amount} was accepted")
        except kind as e:
            assert field is None or e.field == field, e
    held = await phone.advances(site, day1)
    assert [(a.id, a.amount_fen) for a in held] == [(advance.id, 30000)], held
    assert held[0].confirmation_state == m.SignoffStateRecord.UNSIGNED, held
    assert await phone.advances(site, day2) == []
    # The worker confirms it on the foreman's phone (a tap of consent); only he may.
    try:
        await phone.confirm_advance(site, day1, crew[1].id, advance.id, None)
        raise AssertionError("another worker confirmed the advance")
    except m.SiteSyncError.Validation:
        pass
    confirmed = await phone.confirm_advance(site, day1, crew[0].id, advance.id, None)
    assert confirmed.confirmation_state == m.SignoffStateRecord.SIGNED, confirmed
    # An edit keeps his confirmation and says what changed; he confirms it again.
    edited = await phone.edit_advance(site, day1, advance.id, None, "生活费（现金）")
    assert edited.confirmation_state == m.SignoffStateRecord.CHANGED_SINCE_SIGNED, edited
    assert edited.changes and edited.confirmation is not None, edited
    again = await phone.confirm_advance(site, day1, crew[0].id, advance.id, None)
    assert again.confirmation_state == m.SignoffStateRecord.SIGNED and again.note == "生活费（现金）", again
    return advance


async def pay_sheet_as_on_server(url, manager_token, phone, site, day1, day2, crew, advance):
    """The crew's pay sheet on the phone, once both days are approved and synced, has the figures
    head office's `GET /v1/pay` has, field by field."""
    await phone.sync_now()
    sheet = await phone.pay_sheet(site, "site-hz-01/crew-1", day1, day2)
    server = get_json(url, manager_token, "/v1/pay", site=site, crew="site-hz-01/crew-1", **{"from": day1, "to": day2})
    assert sheet.unapproved == [] and server["unapproved"] == [], (sheet, server)
    fields = ["work_days_centi", "hours_min", "overtime_min", "day_pay_fen", "overtime_pay_fen", "piece_pay_fen",
              "advances_fen", "advances_unconfirmed_fen", "net_fen"]
    def as_json(line):
        out = {f: getattr(line, f) for f in ["worker", "name"] + fields}
        out["signoff"] = line.signoff.name.lower()
        return out
    # Head office's sheet also carries what only it knows: corrections to closed periods (none here)
    # and the masked bank account; the phone's figures are the rest.
    assert all(w["adjustment_fen"] == 0 for w in server["workers"]), server["workers"]
    theirs = [{k: w[k] for k in ["worker", "name", "signoff"] + fields} for w in server["workers"]]
    assert [as_json(w) for w in sheet.workers] == theirs, (sheet.workers, server["workers"])
    assert {f: getattr(sheet.total, f) for f in fields} == {f: server["total"][f] for f in fields}
    mine = [w for w in sheet.workers if w.worker == crew[0].id][0]
    assert mine.advances_fen == advance.amount_fen and mine.work_days_centi == 200, mine
    assert mine.advances_unconfirmed_fen == 0, "the worker confirmed his advance: %r" % mine
    assert mine.net_fen == mine.day_pay_fen + mine.overtime_pay_fen + mine.piece_pay_fen - 30000, mine
    try:
        await phone.pay_sheet(site, "site-hz-01/crew-99", day1, day2)
        raise AssertionError("an unknown crew's sheet was computed")
    except m.SiteSyncError.NotFound:
        pass
    try:
        await phone.pay_sheet(site, "site-hz-01/crew-1", day2, day1)
        raise AssertionError("a range ending before it starts was accepted")
    except m.SiteSyncError.Validation as e:
        assert e.field == "to", e


def get_json(url, token, path, **query):
    req = urllib.request.Request(f"{url}{path}?{urllib.parse.urlencode(query)}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


async def signoff_and_review(url, manager_token, path, phone, site, day, crew):
    """Sign-off on the foreman's phone and the site manager's review on his own phone, both offline
    between syncs with the real server: a signature, a dispute that blocks approval (typed error), a
    crew leader's confirmation, a rejection, the answer, the resubmission and the approval."""
    on_day = m.SignoffPeriod.DAY(date=day)
    signed = await phone.sign(site, on_day, crew[0].id, b"\x89PNG strokes")
    assert len(signed) == 1 and signed[0].action == "signed" and len(signed[0].image_sha256) == 64, signed
    disputed = await phone.dispute(site, on_day, crew[1].id, "只干了半天")
    assert len(disputed) == 1 and disputed[0].action == "disputed", disputed
    dispute = disputed[0]
    confirmed = await phone.confirm_crew(site, on_day, "site-hz-01/crew-1")
    assert [c.crew for c in confirmed] == ["site-hz-01/crew-1"], confirmed
    states = {w.worker: w.state for w in (await phone.day_signoffs(site, day)).workers}
    assert states == {crew[0].id: m.SignoffStateRecord.SIGNED, crew[1].id: m.SignoffStateRecord.DISPUTED,
                      crew[2].id: m.SignoffStateRecord.UNSIGNED}, states
    sheet = await phone.month_signoffs(site, day[:7])
    assert {w.worker for w in sheet.workers} >= {c.id for c in crew}, sheet
    try:
        await phone.month_signoffs(site, day[:5] + day[6])
        raise AssertionError("a month without its leading zero was accepted")
    except m.SiteSyncError.Validation as e:
        assert e.field == "month", e
    try:
        await phone.worker_month(crew[0].id, day[:5] + day[6])
        raise AssertionError("worker_month accepted a month without its leading zero")
    except m.SiteSyncError.Validation as e:
        assert e.field == "month", e
    assert len((await phone.worker_month(crew[0].id, day[:7])).days) >= 1
    await phone.submit_day(site, day)
    await phone.sync_now()

    # The site manager's phone: the day waits with its dispute; approving is refused, rejecting is not.
    manager = await m.SiteSync.open(path + "-manager", url, manager_token, "龙东江")
    await manager.sync_now()
    queue = [q for q in await manager.review_queue(site) if q.date == day]
    assert len(queue) == 1 and queue[0].status == m.DayStatusRecord.SUBMITTED and queue[0].open_disputes == 1, queue
    try:
        await manager.approve_day(site, day)
        raise AssertionError("a day with an open dispute was approved")
    except m.SiteSyncError.DisputeOpen as e:
        assert e.dispute == dispute.id, e
    rejected = await manager.reject_day(site, day, "请先答复异议")
    assert rejected.status == m.DayStatusRecord.REJECTED, rejected
    await manager.sync_now()

    # The foreman answers, resubmits; the manager approves; head office sees who did.
    await phone.sync_now()
    assert (await phone.day(site, day)).status == m.DayStatusRecord.REJECTED
    answer = await phone.answer_dispute(site, day, dispute.id, "已核对门禁记录")
    assert answer.action == "answered" and answer.answers == dispute.id, answer
    await phone.submit_day(site, day)
    await phone.sync_now()
    await manager.sync_now()
    queue = [q for q in await manager.review_queue(site) if q.date == day]
    assert len(queue) == 1 and queue[0].open_disputes == 0, queue
    assert await manager.open_conflicts(site, day) == [], "one phone wrote the day: nothing contested"
    approved = await manager.approve_day(site, day)
    assert approved.status == m.DayStatusRecord.APPROVED, approved
    await manager.sync_now()
    assert not [q for q in await manager.review_queue(site) if q.date == day]
    log = get_json(url, manager_token, "/v1/reports/daily-log", site=site, date=day, format="json")
    assert log["status"] == "approved" and log["approval"]["by_name"] == "龙东江", log["approval"]
    on_server = get_json(url, manager_token, "/v1/signoffs", site=site, date=day)
    states = {w["worker"]: w["state"] for w in on_server["workers"]}
    assert states == {crew[0].id: "signed", crew[1].id: "unsigned", crew[2].id: "unsigned"}, states
    assert [c["confirmation"]["crew"] for c in on_server["crews"]] == ["site-hz-01/crew-1"], on_server["crews"]


async def over_tls(url, token, ca_path, path):
    with open(ca_path, encoding="ascii") as f:
        ca = f.read()
    phone = await m.SiteSync.open(path + "-tls", url, token, "崔贵", ca_cert_pem=ca)
    await phone.sync_now()
    assert (await phone.roster("site-hz-01")).workers, "the roster arrived over HTTPS"
    stranger = await m.SiteSync.open(path + "-untrusting", url, token, "崔贵")
    try:
        await stranger.sync_now()
        raise AssertionError("a certificate of an unknown CA was accepted")
    except m.SiteSyncError.Tls as e:
        assert "does not chain" in e.reason, e
    print("python scenario over TLS: ok")


class PipeEnd(m.PeerTransport):
    """One end of an in-memory byte pipe; closing it makes both ends throw TransportClosed."""

    def __init__(self, inbox, outbox, closed):
        self.inbox, self.outbox, self.closed = inbox, outbox, closed
        # Set while no library thread is inside receive(): the library keeps one receive waiting
        # until the stream closes, and Python must not exit while a library thread runs Python
        # code (finalization ends such a thread with pthread_exit, which aborts the process).
        self.idle = threading.Event()
        self.idle.set()

    def send(self, data):
        if self.closed:
            raise m.SiteSyncError.TransportClosed("the pipe is closed")
        self.outbox.put(bytes(data))

    def receive(self):
        self.idle.clear()
        try:
            while not self.closed:
                try:
                    return self.inbox.get(timeout=0.05)
                except queue.Empty:
                    pass
            raise m.SiteSyncError.TransportClosed("the pipe is closed")
        finally:
            self.idle.set()


async def mesh(url, foreman_token, manager_token, path, day):
    site = "site-hz-01"
    a = await m.SiteSync.open(path + "-mesh-a", url, foreman_token, "崔贵")
    b = await m.SiteSync.open(path + "-mesh-b", url, manager_token, "龙东江")
    for p in (a, b):
        await p.sync_now()
    workers = [w for w in (await a.roster(site)).workers if w.crew == "site-hz-01/crew-3" and w.active][:2]
    for w in workers:
        line = m.LaborInput(site=site, date=day, worker=w.id, work_item="site-hz-01/wi-4.1", work_days_centi=100,
                            hours_min=None, overtime_min=0, kind=m.LaborKindRecord.DAY_LABOR, rate_fen=None, note="")
        await a.add_labor(line, None)
    ab, ba, closed = queue.Queue(), queue.Queue(), []
    left, right = PipeEnd(ba, ab, closed), PipeEnd(ab, ba, closed)
    sent, taken = await asyncio.gather(a.sync_over_transport(left), b.sync_over_transport(right))
    closed.append(True)
    for end in (left, right):
        assert await asyncio.to_thread(end.idle.wait, 5), "a receive still waits after the pipe closed"
    assert sent.documents_sent >= 1 and sent.peer_user == "u-manager-hz-01", sent
    assert taken.changes_accepted >= 2 and not taken.refused_changes, taken
    assert sorted(x.worker for x in (await b.day(site, day)).labor) == sorted(w.id for w in workers)
    print("python scenario, site mesh over a Python pipe: ok")


asyncio.run(main(*sys.argv[1:7]))
asyncio.run(over_tls(sys.argv[7], sys.argv[8], sys.argv[9], sys.argv[4]))
asyncio.run(mesh(sys.argv[1], sys.argv[10], sys.argv[11], sys.argv[4], "2026-12-20"))
