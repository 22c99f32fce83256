// The head-office dashboard. Plain JavaScript, no external assets: everything is served by the
// sitesync server. Data comes from the REST API with the session cookie; server-sent events at
// /v1/events tell the page when synced data changed, and the current view reloads itself.
"use strict";

const T = {
  zh: {
    title: "sitesync 总部看板", tab_labor: "点工汇总", tab_approvals: "审批", tab_progress: "进度",
    tab_anomalies: "异常", tab_okr: "OKR", signout: "退出", signin_title: "登录", signin: "登录",
    token_label: "登录凭证（管理员发放的令牌）", bad_token: "凭证无效", site: "工地", all_sites: "全部工地",
    from: "开始", to: "结束", by: "分组", include_unapproved: "含未审批", key: "分组", name: "名称",
    work_days: "工日", hours: "工时", overtime: "加班(时)", cost: "金额", lines: "条数", total: "合计",
    attendance: "月度考勤表", month: "月份", worker: "工人", crew: "班组", download: "下载",
    queue: "待审批", date: "日期", status: "状态", approve: "批准", reject: "驳回", reason: "驳回理由",
    need_reason: "驳回需要填写理由", done: "已处理", none: "暂无", item: "部位", complete: "完成%",
    elapsed: "时间%", labor_cost: "人工成本", budget: "预算", lagging: "滞后", kind: "类型",
    detail: "说明", cycle: "周期", owner: "负责人", progress: "进度", current: "当前", target: "目标",
    last_checkin: "最近签到", not_fed: "未自动更新", alignment: "对齐树", updated: "已更新", live: "实时",
    by_site: "工地", by_crew: "班组", by_trade: "工种", by_worker: "工人", by_work_item: "部位", by_day: "日期",
    select_all: "全选", tab_history: "记录", record: "记录项", field: "字段", value: "值", entered_by: "录入人",
    at: "时间", conflict: "冲突", refusals: "被拒绝的修改", rule: "规则", device: "设备",
    cost_to_date: "累计成本", earned: "挣值", cpi: "成本绩效", eac: "预测完工成本", overrun: "超支",
    tab_signoffs: "签字与照片", day_signoffs: "当日签字", signs_as: "身份", role_worker: "工人", role_crew_leader: "班组长",
    st_signed: "已签字", st_disputed: "有异议", st_answered: "异议已答复", st_changed_since_signed: "签字后有改动",
    st_unsigned: "未签字", st_confirmed: "已确认", st_unconfirmed: "未确认", open_disputes: "未答复的异议",
    dispute_reason: "异议理由", recorded_by: "记录人", to_sign: "本月待签字或重签", days_open: "未签日期",
    photos: "照片与附件", caption: "说明", not_uploaded: "尚未上传", signature: "签名", tap_consent: "点按确认",
    dispute: "异议", answer: "答复",
    tab_devices: "设备", tab_conflicts: "冲突", user: "用户", role: "角色", last_connection: "最近连接", never: "从未",
    app_version: "应用版本", protocol: "协议版本", pending_docs: "手机上未上传", refused: "被拒绝", latest_reasons: "最近原因",
    silent: "失联", silent_sites: "一天未同步，且工地当天没有记录", revoked: "已停用", unknown: "不明", not_reported: "未报告",
    system: "系统", values: "各方的值", keep: "保留此值", kept: "已保留", record_label: "记录",
    conflict_warning: "以下日期有未解决的冲突，批准后将按当前显示的值生效：", approve_anyway: "仍然批准", author: "作者",
    ak_over_work_days: "工日超限", ak_over_hours: "工时超限", ak_missing_log: "缺少日志", ak_amended_after_approval: "批准后修改",
    ak_rate_mismatch: "单价不符", ak_not_on_roster: "不在花名册", ak_invalid_line: "无效记录", ak_cost_overrun: "成本超支",
    ad_over_work_days: "一天共 {work_days} 工日", ad_over_hours: "一天共 {hours} 小时", ad_missing_log: "当天没有点工记录",
    ad_amended_after_approval: "批准后有改动：{changes}", ad_rate_mismatch: "记录单价 {rate}，当日有效单价 {in_force}",
    ad_not_on_roster: "不在本工地花名册，记录单价 {rate}", ad_invalid_line: "记录 {line} 不计入合计：{reason}",
    ad_cost_overrun: "{item}：成本 {cost}（人工 {labor}，计件 {piecework}），预算 {budget}；挣值 {earned}，成本绩效 {cpi}，预测完工 {eac}",
    ds_draft: "草稿", ds_submitted: "已提交", ds_approved: "已批准", ds_rejected: "已驳回", ds_amended_after_approval: "批准后修改",
    ra_submitted: "提交", ra_approved: "批准", ra_rejected: "驳回", ra_amended: "修改",
    ra_signed: "签字", ra_disputed: "提出异议", ra_answered: "答复异议", ra_crew_confirmed: "班组长确认",
    fld_answers: "答复对象", fld_device: "设备", fld_image: "签名图", fld_lines: "所签记录", fld_date: "日期", fld_month: "月份",
    fld_amount_fen: "金额", fld_crew: "班组", fld_leader: "班组长", fld_paid_by: "支付人",
    okr_green: "正常", okr_yellow: "有风险", okr_red: "落后",
    role_foreman: "工长", role_site_manager: "项目经理", role_head_office: "总部", role_admin: "管理员",
    rule_review_manager_only: "仅经理可审批", rule_review_append_only: "审批记录不可改", rule_review_dispute_open: "有未答复的异议",
    rule_site_head_office_only: "主数据仅总部可改", rule_site_grant: "无此工地权限", rule_org: "不属本公司",
    rule_okr_head_office_only: "OKR 结构仅总部可改", rule_okr_owner_only: "仅负责人可签到", rule_okr_system_only: "仅系统可写",
    rule_line_deleted: "记录已删除", rule_day_locked: "当日已锁定", rule_author_forged: "冒用作者", rule_structure: "文档结构不符",
    rule_signature_missing: "缺少签名", rule_signature_invalid: "签名无效", rule_signature_unknown_key: "未知密钥",
    rule_author_foreign_actor: "他人的设备标识", rule_depends_on_refused: "基于被拒绝的修改", rule_invalid: "数据不合规",
    tbl_labor: "点工", tbl_progress: "进度", tbl_day: "当日", tbl_delays: "延误", tbl_reviews: "审批",
    fld_work_days_centi: "工日", fld_hours_min: "工时", fld_overtime_min: "加班", fld_kind: "类型", fld_rate_fen: "单价",
    fld_overtime_rate_fen: "加班单价", fld_note: "备注", fld_deleted: "删除", fld_quantity_milli: "数量", fld_worker: "工人",
    fld_work_item: "部位", fld_weather: "天气", fld_caption: "说明", fld_entered_by: "录入人", fld_added_by: "添加人",
    fld_added_at: "添加时间", fld_media_type: "文件类型", fld_sha256: "文件指纹", fld_target: "所属", fld_lat_micro: "纬度",
    fld_lon_micro: "经度", fld_action: "动作", fld_by: "操作人", fld_at: "时间", fld_reason: "理由", fld_heads: "版本",
    fld_status: "状态", fld_reason_text: "理由", fld_minutes: "时长",
    kind_day_labor: "点工", kind_piecework: "计件", yes: "是", no: "否",
  },
  en: {
    title: "sitesync head office", tab_labor: "Day labor", tab_approvals: "Approvals", tab_progress: "Progress",
    tab_anomalies: "Anomalies", tab_okr: "OKRs", signout: "Sign out", signin_title: "Sign in", signin: "Sign in",
    token_label: "Credential (token issued by the admin)", bad_token: "Invalid credential", site: "Site", all_sites: "All sites",
    from: "From", to: "To", by: "Group by", include_unapproved: "Include unapproved", key: "Key", name: "Name",
    work_days: "Work-days", hours: "Hours", overtime: "Overtime (h)", cost: "Cost", lines: "Lines", total: "Total",
    attendance: "Monthly attendance", month: "Month", worker: "Worker", crew: "Crew", download: "Download",
    queue: "Waiting for approval", date: "Date", status: "Status", approve: "Approve", reject: "Reject", reason: "Reason to reject",
    need_reason: "A rejection needs a reason", done: "Done", none: "Nothing here", item: "Work item", complete: "Complete %",
    elapsed: "Time %", labor_cost: "Labor cost", budget: "Budget", lagging: "Lagging", kind: "Kind",
    detail: "Detail", cycle: "Cycle", owner: "Owner", progress: "Progress", current: "Current", target: "Target",
    last_checkin: "Last check-in", not_fed: "not fed", alignment: "Alignment", updated: "Updated", live: "Live",
    by_site: "Site", by_crew: "Crew", by_trade: "Trade", by_worker: "Worker", by_work_item: "Work item", by_day: "Day",
    select_all: "Select all", tab_history: "Who entered what", record: "Record", field: "Field", value: "Value", entered_by: "Entered by",
    at: "At", conflict: "Conflict", refusals: "Refused changes", rule: "Rule", device: "Device",
    cost_to_date: "Cost to date", earned: "Earned", cpi: "CPI", eac: "Forecast at completion", overrun: "Over budget",
    tab_signoffs: "Sign-off & photos", day_signoffs: "The day's sign-off", signs_as: "Signs as", role_worker: "Worker", role_crew_leader: "Crew leader",
    st_signed: "Signed", st_disputed: "Disputed", st_answered: "Dispute answered", st_changed_since_signed: "Changed since signed",
    st_unsigned: "Unsigned", st_confirmed: "Confirmed", st_unconfirmed: "Unconfirmed", open_disputes: "Open disputes",
    dispute_reason: "Reason", recorded_by: "Recorded by", to_sign: "Still to sign or re-sign this month", days_open: "Days open",
    photos: "Photos and files", caption: "Caption", not_uploaded: "Not uploaded yet", signature: "Signature", tap_consent: "Tap of consent",
    dispute: "Dispute", answer: "Answer",
    tab_devices: "Devices", tab_conflicts: "Conflicts", user: "User", role: "Role", last_connection: "Last connection", never: "Never",
    app_version: "App version", protocol: "Protocol", pending_docs: "Not yet uploaded", refused: "Refused", latest_reasons: "Latest reasons",
    silent: "Silent", silent_sites: "No sync for a day, and the site logged nothing that day", revoked: "Revoked", unknown: "Unknown", not_reported: "Not reported",
    system: "System", values: "Competing values", keep: "Keep this one", kept: "Kept", record_label: "Record",
    conflict_warning: "These days hold unresolved conflicts; approving takes the values shown now:", approve_anyway: "Approve anyway", author: "Author",
    ak_over_work_days: "Too many work-days", ak_over_hours: "Too many hours", ak_missing_log: "Missing log", ak_amended_after_approval: "Changed after approval",
    ak_rate_mismatch: "Rate mismatch", ak_not_on_roster: "Not on the roster", ak_invalid_line: "Invalid line", ak_cost_overrun: "Cost overrun",
    ad_over_work_days: "{work_days} work-days in the day", ad_over_hours: "{hours} hours in the day", ad_missing_log: "No labor logged that day",
    ad_amended_after_approval: "Changed after approval: {changes}", ad_rate_mismatch: "Rate {rate} on the line, {in_force} in force on its date",
    ad_not_on_roster: "Not on this site's roster, logged at {rate}", ad_invalid_line: "Line {line} left out of every sum: {reason}",
    ad_cost_overrun: "{item}: cost {cost} (labor {labor}, piecework {piecework}) against a budget of {budget}; earned {earned}, CPI {cpi}, forecast {eac}",
    ds_draft: "Draft", ds_submitted: "Submitted", ds_approved: "Approved", ds_rejected: "Rejected", ds_amended_after_approval: "Changed after approval",
    ra_submitted: "Submitted", ra_approved: "Approved", ra_rejected: "Rejected", ra_amended: "Amended",
    ra_signed: "Signed", ra_disputed: "Disputed", ra_answered: "Dispute answered", ra_crew_confirmed: "Crew leader confirmed",
    fld_answers: "Answers", fld_device: "Device", fld_image: "Signature image", fld_lines: "Lines signed", fld_date: "Date", fld_month: "Month",
    fld_amount_fen: "Amount", fld_crew: "Crew", fld_leader: "Crew leader", fld_paid_by: "Paid by",
    okr_green: "On track", okr_yellow: "At risk", okr_red: "Behind",
    role_foreman: "Foreman", role_site_manager: "Site manager", role_head_office: "Head office", role_admin: "Admin",
    rule_review_manager_only: "Only a manager may review", rule_review_append_only: "Reviews cannot be changed", rule_review_dispute_open: "A dispute is open",
    rule_site_head_office_only: "Master data is head office's", rule_site_grant: "No grant for the site", rule_org: "Another company",
    rule_okr_head_office_only: "OKR structure is head office's", rule_okr_owner_only: "Only the owner checks in", rule_okr_system_only: "Only the system writes this",
    rule_line_deleted: "The line was deleted", rule_day_locked: "The day is locked", rule_author_forged: "Forged author", rule_structure: "Malformed document",
    rule_signature_missing: "Missing signature", rule_signature_invalid: "Invalid signature", rule_signature_unknown_key: "Unknown key",
    rule_author_foreign_actor: "Another device's identity", rule_depends_on_refused: "Builds on a refused change", rule_invalid: "Invalid data",
    tbl_labor: "Labor", tbl_progress: "Progress", tbl_day: "Day", tbl_delays: "Delays", tbl_reviews: "Reviews",
    fld_work_days_centi: "Work-days", fld_hours_min: "Hours", fld_overtime_min: "Overtime", fld_kind: "Kind", fld_rate_fen: "Rate",
    fld_overtime_rate_fen: "Overtime rate", fld_note: "Note", fld_deleted: "Deleted", fld_quantity_milli: "Quantity", fld_worker: "Worker",
    fld_work_item: "Work item", fld_weather: "Weather", fld_caption: "Caption", fld_entered_by: "Entered by", fld_added_by: "Added by",
    fld_added_at: "Added at", fld_media_type: "File type", fld_sha256: "File fingerprint", fld_target: "Belongs to", fld_lat_micro: "Latitude",
    fld_lon_micro: "Longitude", fld_action: "Action", fld_by: "By", fld_at: "At", fld_reason: "Reason", fld_heads: "Version",
    fld_status: "Status", fld_reason_text: "Reason", fld_minutes: "Duration",
    kind_day_labor: "Day labor", kind_piecework: "Piecework", yes: "Yes", no: "No",
  },
};

const state = {
  lang: localStorage.getItem("lang") || "zh",
  session: null,
  view: "labor",
  f: { site: "", from: "", to: "", cfrom: "", cto: "", by: "site", unapproved: true, month: "", cycle: "", date: "" },
};
const $ = (sel) => document.querySelector(sel);
const t = (k) => T[state.lang][k] || k;
// An enum value the API returns, in the reader's language: `prefix` + value (dots as underscores);
// an unknown value is shown as the API wrote it, never silently dropped.
const tr = (prefix, v) => { const k = prefix + String(v ?? "").replace(/\./g, "_"); return T[state.lang][k] || String(v ?? ""); };
// A sentence from a template and the figures the server gave (`{name}` placeholders).
const fill = (template, params) => template.replace(/\{(\w+)\}/g, (_, k) => (params && params[k] != null ? params[k] : ""));
// A site by its name (its id in a title, for those who need it).
const siteName = (id) => { const s = (state.session?.sites || []).find((x) => x.id === id); return s ? s.name : id; };
const siteCell = (id, name) => `<span title="${esc(id)}">${esc(name || siteName(id))}</span>`;
const stamp = (at) => (at ? new Date(at).toLocaleString(locale()) : "");
const locale = () => (state.lang === "zh" ? "zh-CN" : "en-US");
const money = (fen) => new Intl.NumberFormat(locale(), { style: "currency", currency: "CNY" }).format(fen / 100);
const fixed = (v, scale, d = 2) => new Intl.NumberFormat(locale(), { minimumFractionDigits: d, maximumFractionDigits: d }).format(v / scale);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// The reader's own calendar date: toISOString would give UTC's, the day before until 08:00 in China.
const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
// Calendar dates of a site, as the reader's language writes them (the ISO date stays in a title).
const day = (isoDate) => `<time datetime="${esc(isoDate)}" title="${esc(isoDate)}">${new Intl.DateTimeFormat(locale(), { year: "numeric", month: "2-digit", day: "2-digit", timeZone: "UTC" }).format(new Date(isoDate + "T00:00:00Z"))}</time>`;

// A stored field value as a clerk reads it: work-days, hours and money in units, kinds and yes/no in
// words (the API gives values as text: numbers bare, strings quoted).
const fieldValue = (field, raw) => {
  let v = raw;
  if (typeof v === "string" && v.startsWith('"')) { try { v = JSON.parse(v); } catch (e) { /* as written */ } }
  if (v === "(deleted)") return t("fld_deleted");
  const n = Number(v);
  switch (field) {
    case "work_days_centi": return fixed(n, 100);
    case "hours_min": case "overtime_min": return fixed(n, 60, 1);
    case "rate_fen": case "overtime_rate_fen": return money(n);
    case "quantity_milli": return fixed(n, 1000, 1);
    case "deleted": return v === "true" || v === true ? t("yes") : t("no");
    case "kind": return tr("kind_", v);
    case "action": return tr("ra_", v);
    case "amount_fen": return money(n);
    default: return String(v);
  }
};
// A person: the name, never a bare id (`system` is the server itself).
const person = (name, id) => (id === "system" || name === "system" ? t("system") : esc(name || id || t("unknown")));

// Cost against budget of a work item or the site (the progress report's `cost`): an overrun in red.
const costCells = (c) => `<td class="num${c.overrun ? " over" : ""}">${money(c.cost_fen)}</td><td class="num">${money(c.earned_fen)}</td>
  <td class="num${c.overrun ? " over" : ""}">${c.cpi_milli === null ? "—" : fixed(c.cpi_milli, 1000, 2)}</td><td class="num">${money(c.eac_fen)}</td>
  <td>${c.overrun ? `<span class="status red">${t("overrun")}</span>` : ""}</td>`;

// `outcomes`: the body lists one outcome per item whatever the status (POST /v1/approvals answers
// 409 when no decision was recorded, with each decision's error).
async function api(path, { outcomes = false, ...opts } = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts });
  if (r.status === 401) { signedOut(); throw new Error("unauthorized"); }
  if (!r.ok && !(outcomes && r.status === 409)) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
  return r.status === 204 ? null : r.json();
}

function applyI18n() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.title = t("title");
  $("#lang").textContent = state.lang === "zh" ? "EN" : "中文";
}

function signedOut() {
  state.session = null;
  $("#signin").hidden = false; $("#view").hidden = true; $("#tabs").hidden = true; $("#signout").hidden = true;
}

function signedIn(session) {
  state.session = session;
  $("#signin").hidden = true; $("#view").hidden = false; $("#tabs").hidden = false; $("#signout").hidden = false;
  const today = new Date();
  const first = new Date(today.getFullYear(), today.getMonth(), 1);
  state.f.from ||= iso(first); state.f.to ||= iso(today); state.f.date ||= iso(today);
  state.f.month ||= iso(today).slice(0, 7);
  // Conflicts are open work, not a period's figures: their page looks back 30 days (as the API does),
  // so a conflict of the 30th does not drop out of sight on the 1st.
  state.f.cfrom ||= iso(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 30)); state.f.cto ||= iso(today);
  state.f.cycle ||= `${today.getFullYear()}-Q${Math.floor(today.getMonth() / 3) + 1}`;
  state.f.site ||= "";
  listen();
  show(state.view);
}

function siteSelect(allowAll) {
  const opts = (allowAll ? [`<option value="">${esc(t("all_sites"))}</option>`] : [])
    .concat(state.session.sites.map((s) => `<option value="${esc(s.id)}" ${s.id === state.f.site ? "selected" : ""}>${esc(s.code)} ${esc(s.name)}</option>`));
  return `<label>${t("site")}<select id="f-site" aria-label="${t("site")}">${opts.join("")}</select></label>`;
}
const input = (id, key, type = "date") => `<label>${t(key)}<input id="f-${id}" type="${type}" value="${esc(state.f[id])}" aria-label="${t(key)}"></label>`;
const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== "" && v != null)).toString();
const downloads = (path, q) => `<div class="downloads">${t("download")}: <a data-testid="xlsx" href="${path}?${qs({ ...q, format: "xlsx" })}">Excel</a><a href="${path}?${qs({ ...q, format: "csv" })}">CSV</a></div>`;

function bindFilters() {
  document.querySelectorAll(".filters input, .filters select").forEach((el) => {
    el.addEventListener("change", () => {
      const id = el.id.slice(2);
      state.f[id] = el.type === "checkbox" ? el.checked : el.value;
      render();
    });
  });
}

const views = {
  async labor() {
    const site = state.f.site || (state.session.sites[0] || {}).id;
    const q = { site: state.f.site, from: state.f.from, to: state.f.to, by: state.f.by, include_unapproved: state.f.unapproved };
    const s = await api(`/v1/reports/labor?${qs(q)}`);
    const byOpts = ["site", "crew", "trade", "worker", "work_item", "day"].map((b) => `<option value="${b}" ${b === state.f.by ? "selected" : ""}>${t("by_" + b)}</option>`).join("");
    const row = (r, cls = "") => `<tr class="${cls}"><td>${esc(r.key)}</td><td>${esc(r.label)}</td><td class="num">${fixed(r.work_days_centi, 100)}</td><td class="num">${fixed(r.hours_min, 60)}</td><td class="num">${fixed(r.overtime_min, 60)}</td><td class="num">${money(r.cost_fen)}</td><td class="num">${r.lines}</td></tr>`;
    const gq = { site, month: state.f.month, include_unapproved: state.f.unapproved };
    const g = site ? await api(`/v1/reports/attendance?${qs(gq)}`) : null;
    const days = g ? Array.from({ length: g.days_in_month }, (_, i) => i + 1) : [];
    return `<h2>${t("tab_labor")}</h2>
      <div class="filters">${siteSelect(true)}${input("from", "from")}${input("to", "to")}
        <label>${t("by")}<select id="f-by">${byOpts}</select></label>
        <label><span>${t("include_unapproved")}</span><input id="f-unapproved" type="checkbox" ${state.f.unapproved ? "checked" : ""}></label></div>
      <div class="scroll"><table data-testid="labor-table"><thead><tr><th>${t("key")}</th><th>${t("name")}</th><th class="num">${t("work_days")}</th><th class="num">${t("hours")}</th><th class="num">${t("overtime")}</th><th class="num">${t("cost")}</th><th class="num">${t("lines")}</th></tr></thead>
      <tbody>${s.rows.map((r) => row(r)).join("")}${row({ key: t("total"), label: "", ...s.total }, "total")}</tbody></table></div>
      ${downloads("/v1/reports/labor", q)}
      <h3>${t("attendance")}</h3>
      <div class="filters">${input("month", "month", "month")}</div>
      ${g ? `<div class="scroll"><table class="grid" data-testid="attendance"><thead><tr><th>${t("worker")}</th><th>${t("name")}</th><th>${t("crew")}</th>${days.map((d) => `<th class="num">${d}</th>`).join("")}<th class="num">${t("work_days")}</th><th class="num">${t("cost")}</th></tr></thead>
      <tbody>${g.rows.map((r) => `<tr><td>${esc(r.worker)}</td><td>${esc(r.name)}</td><td>${esc(r.crew)}</td>${r.days.map((v) => `<td class="num">${v == null ? "" : fixed(v, 100, 1)}</td>`).join("")}<td class="num">${fixed(r.work_days_centi, 100)}</td><td class="num">${money(r.cost_fen)}</td></tr>`).join("")}
      <tr class="total"><td>${t("total")}</td><td></td><td></td>${g.day_totals.map((v) => `<td class="num">${v ? fixed(v, 100, 1) : ""}</td>`).join("")}<td class="num">${fixed(g.work_days_centi, 100)}</td><td class="num">${money(g.cost_fen)}</td></tr></tbody></table></div>
      ${downloads("/v1/reports/attendance", gq)}` : ""}`;
  },

  async approvals(bind) {
    const q = await api(`/v1/approvals?${qs({ site: state.f.site })}`);
    const review = (r) => r ? `${esc(tr("ra_", r.action))} · ${esc(r.by)} · ${stamp(r.at)}${r.reason ? ` · ${esc(r.reason)}` : ""}` : "";
    // The clerk's ticks, kept across the re-renders live updates cause (else a tick made just before
    // an update is lost, and "approve" acts on nothing); only days still in the queue count.
    const picks = state.picks = new Set(q.map((d) => `${d.site}|${d.date}`).filter((k) => (state.picks || new Set()).has(k)));
    const rows = q.map((d, i) => `<tr><td><input type="checkbox" class="pick" data-i="${i}"${picks.has(`${d.site}|${d.date}`) ? " checked" : ""} aria-label="${esc(siteName(d.site))} ${esc(d.date)}"></td><td>${siteCell(d.site)}</td><td>${day(d.date)}</td><td><span class="status ${esc(d.status)}">${esc(tr("ds_", d.status))}</span></td><td class="num">${d.lines}</td><td class="num">${fixed(d.work_days_centi, 100)}</td><td class="num">${money(d.cost_fen)}</td><td>${review(d.review)}</td></tr>`).join("");
    bind(() => {
      const tick = (c, on) => { c.checked = on; const d = q[+c.dataset.i]; if (on) picks.add(`${d.site}|${d.date}`); else picks.delete(`${d.site}|${d.date}`); };
      document.querySelectorAll(".pick").forEach((c) => c.addEventListener("change", () => tick(c, c.checked)));
      $("#pick-all")?.addEventListener("change", (e) => document.querySelectorAll(".pick").forEach((c) => tick(c, e.target.checked)));
      // An approval of a day with open conflicts is refused (`open_conflicts`) until confirmed:
      // the page lists the conflicts and asks once more.
      const decide = async (decision, picked, confirm = false) => {
        const reason = $("#reason").value.trim();
        if (decision === "reject" && !reason) { $("#decision-msg").textContent = t("need_reason"); return; }
        if (!picked.length) return;
        const res = await api("/v1/approvals", { outcomes: true, method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ decisions: picked.map((d) => ({ site: d.site, date: d.date, decision, reason })), confirm_conflicts: confirm }) });
        const held = res.filter((r) => r.code === "open_conflicts");
        // Kept in the state, so a live update re-rendering the queue keeps the question open.
        state.held = held.length ? { decision, days: held } : null;
        state.picks = new Set();
        await render(`${t("done")}: ${res.filter((r) => r.ok).length}/${res.length}`);
      };
      $("#confirm-approve")?.addEventListener("click", () => {
        const held = state.held;
        state.held = null;
        decide(held.decision, held.days.map((r) => ({ site: r.site, date: r.date })), true);
      });
      const picked = () => q.filter((d) => picks.has(`${d.site}|${d.date}`));
      $("#approve")?.addEventListener("click", () => decide("approve", picked()));
      $("#reject")?.addEventListener("click", () => decide("reject", picked()));
    });
    return `<h2>${t("queue")}</h2><div class="filters">${siteSelect(true)}</div>
      ${q.length ? `<div class="scroll"><table data-testid="queue"><thead><tr><th><input id="pick-all" type="checkbox" aria-label="${t("select_all")}"></th><th>${t("site")}</th><th>${t("date")}</th><th>${t("status")}</th><th class="num">${t("lines")}</th><th class="num">${t("work_days")}</th><th class="num">${t("cost")}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>
      <div class="filters"><label>${t("reason")}<input id="reason" type="text"></label>
        <button id="approve" class="primary" type="button">${t("approve")}</button><button id="reject" type="button">${t("reject")}</button></div>` : `<p class="msg">${t("none")}</p>`}
      ${state.held ? `<div id="conflict-warning" class="warning" role="alert" data-testid="conflict-warning"><p>${t("conflict_warning")}</p><ul>${state.held.days.flatMap((r) => r.conflicts.map((c) => `<li>${siteCell(r.site)} ${day(r.date)} ${esc(c.record_label)} ${esc(tr("fld_", c.field))}: ${c.values.map((v) => `${esc(fieldValue(c.field, v.value))} (${person(v.user_name, v.user_id)})`).join(" / ")}</li>`)).join("")}</ul>
        <button id="confirm-approve" class="primary" type="button">${t("approve_anyway")}</button></div>` : ""}
      <p id="decision-msg" class="msg" role="status">${esc(state.flash || "")}</p>`;
  },

  // One site-day's evidence: where each worker's and crew leader's sign-off stands, the disputes no
  // one has answered, the month's workers who still have to sign or re-sign, and the day's photos
  // (thumbnails made by the server from the uploaded bytes).
  async signoffs() {
    const site = state.f.site || (state.session.sites[0] || {}).id;
    if (!site) return `<p class="msg">${t("none")}</p>`;
    const date = state.f.date, month = state.f.month;
    const [log, states, sheet, grid] = await Promise.all([
      api(`/v1/reports/daily-log?${qs({ site, date, format: "json" })}`),
      api(`/v1/signoffs?${qs({ site, date })}`),
      api(`/v1/signoffs/sheet?${qs({ site, month })}`),
      api(`/v1/reports/attendance?${qs({ site, month, include_unapproved: true })}`),
    ]);
    const names = new Map(grid.rows.map((r) => [r.worker, r.name]));
    log.sign_offs.filter((s) => s.role === "worker").forEach((s) => names.set(s.id, s.who));
    const who = (id) => `${esc(names.get(id) || "")} <small>${esc(id)}</small>`;
    const when = (at) => at ? new Date(at).toLocaleString(locale()) : "";
    const badge = (s) => `<span class="status sign-${esc(s)}" data-state="${esc(s)}">${esc(t("st_" + s))}</span>`;
    // What a state rests on, in the reader's language: the dispute and its answer, or what changed
    // since the signature (line, field, signed → now).
    const byWorker = new Map(states.workers.map((w) => [w.worker, w]));
    const detail = (s) => {
      const w = byWorker.get(s.id);
      if (!w) return "";
      if (s.state === "disputed") return w.open_disputes.map((d) => `${t("dispute")}: ${d.reason}`).join("; ");
      if (s.state === "answered") {
        const d = states.events.filter((e) => e.action === "disputed" && e.worker === s.id).pop();
        const a = d && states.events.filter((e) => e.action === "answered" && e.answers === d.id).pop();
        return d ? `${t("dispute")}: ${d.reason}; ${t("answer")}: ${a ? a.reason : ""}` : "";
      }
      if (s.state === "changed_since_signed") return w.changes.map((c) => `${tr("fld_", c.field)}: ${c.approved == null ? "–" : fieldValue(c.field, c.approved)} → ${c.now == null ? "–" : fieldValue(c.field, c.now)}`).join("; ");
      return "";
    };
    const signs = log.sign_offs.map((s) => `<tr data-id="${esc(s.id)}"><td>${esc(s.who)} <small>${esc(s.id)}</small></td><td>${esc(t("role_" + s.role))}</td><td>${badge(s.state)}</td><td>${when(s.at)}</td><td>${s.at && s.role === "worker" && s.state !== "disputed" && s.state !== "answered" ? esc(s.image ? t("signature") : t("tap_consent")) : ""}</td><td class="detail">${esc(detail(s))}</td></tr>`).join("");
    const disputes = states.workers.flatMap((w) => w.open_disputes.map((d) => `<tr><td>${who(w.worker)}</td><td>${esc(d.reason)}</td><td>${esc(d.by)}</td><td>${when(d.at)}</td></tr>`)).join("");
    const open = sheet.workers.filter((w) => w.state !== "signed");
    const openRows = open.map((w) => `<tr data-worker="${esc(w.worker)}"><td>${who(w.worker)}</td><td>${badge(w.state)}</td><td>${w.days.filter((d) => d.state !== "signed").map((d) => `${day(d.date)} ${esc(t("st_" + d.state))}`).join("<br>")}</td></tr>`).join("");
    const photo = (a) => {
      const img = a.bytes_here && a.media_type.startsWith("image/")
        ? `<a href="/v1/blobs/${esc(a.sha256)}"><img src="/v1/blobs/${esc(a.sha256)}/thumbnail" alt="${esc(a.caption)}" loading="lazy"></a>`
        : `<div class="file">${a.bytes_here ? `<a href="/v1/blobs/${esc(a.sha256)}">${esc(a.media_type)}</a>` : esc(t("not_uploaded"))}</div>`;
      return `<figure data-sha256="${esc(a.sha256)}">${img}<figcaption>${esc(a.caption)}<br><small>${esc(a.by)} · ${when(a.at)}</small></figcaption></figure>`;
    };
    const table = (id, heads, rows) => rows ? `<div class="scroll"><table data-testid="${id}"><thead><tr>${heads.map((h) => `<th>${t(h)}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="msg" data-testid="${id}">${t("none")}</p>`;
    return `<h2>${t("tab_signoffs")}</h2><div class="filters">${siteSelect(false)}${input("date", "date")}${input("month", "month", "month")}</div>
      <h3>${t("day_signoffs")}</h3>${table("signoffs", ["name", "signs_as", "status", "at", "signature", "detail"], signs)}
      <h3>${t("open_disputes")}</h3>${table("disputes", ["worker", "dispute_reason", "recorded_by", "at"], disputes)}
      <h3>${t("to_sign")}</h3>${table("to-sign", ["worker", "status", "days_open"], openRows)}
      <h3>${t("photos")}</h3>${log.attachments.length ? `<div class="photos" data-testid="photos">${log.attachments.map(photo).join("")}</div>` : `<p class="msg" data-testid="photos">${t("none")}</p>`}`;
  },

  async progress() {
    const site = state.f.site || (state.session.sites[0] || {}).id;
    if (!site) return `<p class="msg">${t("none")}</p>`;
    const q = { site, date: state.f.date, include_unapproved: state.f.unapproved };
    const p = await api(`/v1/reports/progress?${qs(q)}`);
    const h = 22, w = 640, label = 170;
    const bars = p.items.map((it, i) => {
      const y = i * (h + 8) + 4;
      const span = w - label - 110, c = (it.percent_complete / 100) * span, e = (it.percent_time_elapsed / 100) * span;
      return `<text x="0" y="${y + 15}">${esc(it.code)} ${esc(it.name).slice(0, 12)}</text>
        <rect x="${label}" y="${y}" width="${e}" height="${h / 2 - 1}" fill="#c9d1d9"><title>${t("elapsed")} ${it.percent_time_elapsed}%</title></rect>
        <rect x="${label}" y="${y + h / 2}" width="${c}" height="${h / 2 - 1}" fill="${it.lagging ? "#cf222e" : "#1a7f37"}"><title>${t("complete")} ${it.percent_complete}%</title></rect>
        <text x="${label + Math.max(c, e) + 4}" y="${y + 15}">${it.percent_complete}% / ${it.percent_time_elapsed}%</text>`;
    }).join("");
    return `<h2>${t("tab_progress")}</h2><div class="filters">${siteSelect(false)}${input("date", "date")}</div>
      <svg class="bar-chart" role="img" aria-label="${t("complete")} / ${t("elapsed")}" viewBox="0 0 ${w} ${p.items.length * (h + 8) + 8}" width="100%">${bars}</svg>
      <div class="scroll"><table data-testid="progress"><thead><tr><th>${t("item")}</th><th>${t("name")}</th><th class="num">${t("complete")}</th><th class="num">${t("elapsed")}</th><th class="num">${t("labor_cost")}</th><th class="num">${t("budget")}</th><th>${t("lagging")}</th><th class="num">${t("cost_to_date")}</th><th class="num">${t("earned")}</th><th class="num">${t("cpi")}</th><th class="num">${t("eac")}</th><th>${t("overrun")}</th></tr></thead>
      <tbody>${p.items.map((it) => `<tr${it.cost.overrun ? ` class="overrun" data-testid="overrun"` : ""}><td>${esc(it.code)}</td><td>${esc(it.name)}</td><td class="num">${it.percent_complete}</td><td class="num">${it.percent_time_elapsed}</td><td class="num">${money(it.labor_cost_fen)}</td><td class="num">${money(it.budget_fen)}</td><td>${it.lagging ? `<span class="status red">${t("lagging")}</span>` : ""}</td>${costCells(it.cost)}</tr>`).join("")}
      <tr class="total${p.cost.overrun ? " overrun" : ""}"><td>${t("total")}</td><td></td><td></td><td></td><td class="num">${money(p.cost.labor_cost_fen)}</td><td class="num">${money(p.cost.budget_fen)}</td><td></td>${costCells(p.cost)}</tr></tbody></table></div>
      ${downloads("/v1/reports/progress", q)}`;
  },

  async anomalies() {
    const q = { site: state.f.site, from: state.f.from, to: state.f.to };
    const list = await api(`/v1/reports/anomalies?${qs(q)}`);
    return `<h2>${t("tab_anomalies")}</h2><div class="filters">${siteSelect(true)}${input("from", "from")}${input("to", "to")}</div>
      ${list.length ? `<div class="scroll"><table data-testid="anomalies"><thead><tr><th>${t("date")}</th><th>${t("site")}</th><th>${t("kind")}</th><th>${t("worker")}</th><th>${t("detail")}</th></tr></thead>
      <tbody>${list.map((a) => `<tr data-kind="${esc(a.kind)}"><td>${day(a.date)}</td><td>${a.site.split(",").map((id, i) => siteCell(id, (a.site_name || "").split(",")[i])).join("、")}</td><td>${esc(tr("ak_", a.kind))}</td><td>${a.worker ? `<span title="${esc(a.worker)}">${esc(a.worker_name || a.worker)}</span>` : ""}</td><td>${esc(fill(tr("ad_", a.kind), { ...a.params, changes: (a.params || {}).changes || "" }))}</td></tr>`).join("")}</tbody></table></div>` : `<p class="msg">${t("none")}</p>`}
      ${downloads("/v1/reports/anomalies", q)}`;
  },

  async history() {
    const site = state.f.site || (state.session.sites[0] || {}).id;
    if (!site) return `<p class="msg">${t("none")}</p>`;
    const date = state.f.date || iso(new Date());
    const h = await api(`/v1/history?${qs({ site, date })}`);
    const who = (v) => v.user_name ? `${person(v.user_name, v.user_id)} <small>${esc(v.device || "")}</small>` : esc(v.device || t("unknown"));
    const when = (v) => v.device_time ? new Date(v.device_time).toLocaleString(locale()) : "";
    const shown = h.fields.filter((f) => ["labor", "progress", "day", "delays", "reviews"].includes(f.table));
    const rows = shown.map((f) => {
      const conflict = f.values.length > 1;
      return f.values.map((v, i) => `<tr class="${conflict ? "conflict" : ""}">${i === 0 ? `<td rowspan="${f.values.length}"><span title="${esc(f.record)}">${esc(tr("tbl_", f.table))}</span></td><td rowspan="${f.values.length}">${esc(tr("fld_", f.field))}${conflict ? ` <span class="status red">${t("conflict")}</span>` : ""}</td>` : ""}<td>${esc(fieldValue(f.field, v.value))}</td><td>${who(v)}</td><td>${when(v)}</td></tr>`).join("");
    }).join("");
    let refused = [];
    if (["admin", "head_office"].includes(state.session.role)) {
      try { refused = await api("/v1/refusals?limit=50"); } catch (e) { refused = []; }
    }
    return `<h2>${t("tab_history")}</h2><div class="filters">${siteSelect(false)}${input("date", "date")}</div>
      ${rows ? `<div class="scroll"><table data-testid="history"><thead><tr><th>${t("record")}</th><th>${t("field")}</th><th>${t("value")}</th><th>${t("entered_by")}</th><th>${t("at")}</th></tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="msg">${t("none")}</p>`}
      ${refused.length ? `<h3>${t("refusals")}</h3><div class="scroll"><table data-testid="refusals"><thead><tr><th>${t("at")}</th><th>${t("device")}</th><th>${t("worker")}</th><th>${t("record")}</th><th>${t("rule")}</th><th>${t("detail")}</th></tr></thead>
      <tbody>${refused.map((r) => `<tr><td>${stamp(r.at)}</td><td>${esc(r.device)}</td><td>${esc(r.user_id)}</td><td>${esc(r.doc)}</td><td>${esc(tr("rule_", r.rule))}</td><td title="${esc(r.reason)}">${state.lang === "en" ? esc(r.reason) : esc(tr("rule_", r.rule))}</td></tr>`).join("")}</tbody></table></div>` : ""}`;
  },

  // Each device's sync health (GET /v1/devices): whose it is, when it last connected, what it says it
  // runs and still holds, what the server refused from it, and whether it has gone silent.
  async devices() {
    const list = await api("/v1/devices");
    const reported = (v) => (v ? esc(v) : `<small>${t("not_reported")}</small>`);
    const rows = list.map((d) => `<tr data-device="${esc(d.device)}"${d.silent ? ' class="silent"' : ""}>
      <td>${esc(d.user_name)}${d.revoked ? ` <span class="status">${t("revoked")}</span>` : ""}<br><small>${esc(d.label)} ${esc(d.device)}</small></td>
      <td>${esc(tr("role_", d.role))}</td>
      <td>${d.last_connection ? stamp(d.last_connection) : t("never")}</td>
      <td>${reported(d.app_version)}</td><td>${reported(d.protocol)}</td>
      <td class="num">${d.pending_documents == null ? `<small>${t("not_reported")}</small>` : d.pending_documents}</td>
      <td class="num">${d.refused}</td>
      <td>${d.latest_refusals.map((r) => `<span title="${esc(r.reason)}">${esc(tr("rule_", r.rule))}</span> <small>${stamp(r.at)}</small>`).join("<br>")}</td>
      <td>${d.silent ? `<span class="status red" data-testid="silent" title="${t("silent_sites")}">${t("silent")}</span> ${d.silent_sites.map((x) => siteCell(x.id, x.name)).join("、")}` : ""}</td></tr>`).join("");
    return `<h2>${t("tab_devices")}</h2><p class="msg">${t("silent")}: ${t("silent_sites")}</p>
      ${rows ? `<div class="scroll"><table data-testid="devices"><thead><tr><th>${t("user")}</th><th>${t("role")}</th><th>${t("last_connection")}</th><th>${t("app_version")}</th><th>${t("protocol")}</th><th class="num">${t("pending_docs")}</th><th class="num">${t("refused")}</th><th>${t("latest_reasons")}</th><th>${t("silent")}</th></tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="msg">${t("none")}</p>`}`;
  },

  // Every open conflict of the range (GET /v1/conflicts), each competing value with its author and
  // time; "keep this one" writes that value again as head office (POST /v1/conflicts/resolve).
  async conflicts(bind) {
    const q = { site: state.f.site, from: state.f.cfrom, to: state.f.cto };
    const list = await api(`/v1/conflicts?${qs(q)}`);
    bind(() => document.querySelectorAll("button.keep").forEach((b) => b.addEventListener("click", async () => {
      const c = list[+b.dataset.i];
      await api("/v1/conflicts/resolve", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ doc: c.doc, table: c.table, record: c.record, field: c.field, hash: b.dataset.hash }) });
      await render(t("kept"));
    })));
    const rows = list.map((c, i) => c.values.map((v, j) => `<tr data-conflict="${i}">${j === 0 ? `<td rowspan="${c.values.length}">${day(c.date)}</td><td rowspan="${c.values.length}">${siteCell(c.site, c.site_name)}</td>
      <td rowspan="${c.values.length}"><span title="${esc(c.record)}">${esc(tr("tbl_", c.table))} ${esc(c.record_label)}</span></td><td rowspan="${c.values.length}">${esc(tr("fld_", c.field))}</td>` : ""}
      <td data-testid="value">${esc(fieldValue(c.field, v.value))}</td><td>${person(v.user_name, v.user_id)}</td><td>${stamp(v.device_time)}</td>
      <td><button class="keep" type="button" data-testid="keep" data-i="${i}" data-hash="${esc(v.hash)}">${t("keep")}</button></td></tr>`).join("")).join("");
    return `<h2>${t("tab_conflicts")}</h2><div class="filters">${siteSelect(true)}${input("cfrom", "from")}${input("cto", "to")}</div>
      ${rows ? `<div class="scroll"><table data-testid="conflicts"><thead><tr><th>${t("date")}</th><th>${t("site")}</th><th>${t("record_label")}</th><th>${t("field")}</th><th>${t("value")}</th><th>${t("author")}</th><th>${t("at")}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="msg" data-testid="conflicts">${t("none")}</p>`}
      <p class="msg" role="status">${esc(state.flash || "")}</p>`;
  },

  async okr() {
    let b;
    try { b = await api(`/v1/reports/okr?${qs({ cycle: state.f.cycle, date: state.f.date })}`); } catch (e) { b = null; }
    const badge = (s) => `<span class="status ${esc(s)}" data-status="${esc(s)}">${esc(tr("okr_", s))}</span>`;
    const people = (b && b.people) || {};
    const named = (id) => person(people[id], id);
    // A check-in's author: the feeder is the system; `local` (written on a phone before it knew its
    // user) is named by the signature of the change that wrote it.
    const author = (c) => c.author === "system" ? t("system")
      : c.author === "local" ? esc((b.checkin_signers || {})[c.id] || t("unknown")) : named(c.author);
    const tree = (nodes) => nodes.length ? `<ul class="tree">${nodes.map((n) => `<li>${esc(n.title)}${tree(n.children)}</li>`).join("")}</ul>` : "";
    return `<h2>OKR</h2><div class="filters"><label>${t("cycle")}<input id="f-cycle" type="text" value="${esc(state.f.cycle)}"></label>${input("date", "date")}</div>
      ${b ? b.objectives.map((o) => `<div class="objective" data-testid="objective"><strong>${esc(o.title)}</strong> ${badge(o.status)} ${Math.round(o.progress * 100)}% · ${named(o.owner)}
        <div class="scroll"><table><thead><tr><th>${t("target")}</th><th>${t("owner")}</th><th class="num">${t("current")}</th><th class="num">${t("target")}</th><th class="num">${t("progress")}</th><th>${t("status")}</th><th>${t("last_checkin")}</th></tr></thead>
        <tbody>${o.key_results.map((k) => `<tr><td>${esc(k.title)}</td><td>${named(k.owner)}</td><td class="num">${fixed(k.current_milli, 1000, 1)} ${esc(k.unit)}</td><td class="num">${fixed(k.target_milli, 1000, 1)}</td><td class="num">${Math.round(k.progress * 100)}%</td><td>${badge(k.status)}</td><td>${k.last_checkin ? day(k.last_checkin.date) + " " + author(k.last_checkin) : ""}${k.metric_refused ? ` <span class="msg" title="${esc(k.metric_refused)}">⚠ ${t("not_fed")}</span>` : ""}</td></tr>`).join("")}</tbody></table></div></div>`).join("")
        + `<h3>${t("alignment")}</h3>${tree(b.alignment)}${downloads("/v1/reports/okr", { cycle: state.f.cycle })}` : `<p class="msg">${t("none")}</p>`}`;
  },
};

// Renders overlap (a live update's, a tab click's, an action's): only the latest started may write the
// page, else a slow render of the tab just left replaces the one clicked, or binds its buttons to
// another render's rows.
let rendering = 0;
async function render(flash) {
  // A message from the last action stays while live updates re-render the view.
  if (flash !== undefined) state.flash = flash;
  const mine = ++rendering;
  const binders = [];
  try {
    const html = await views[state.view]((f) => binders.push(f));
    if (mine !== rendering) return;
    $("#view").innerHTML = html;
    bindFilters();
    binders.forEach((f) => f());
    $("#live").textContent = `${t("updated")} ${new Date().toLocaleTimeString(locale())}`;
  } catch (e) {
    if (mine === rendering && e.message !== "unauthorized") $("#view").innerHTML = `<p class="msg" role="alert">${esc(e.message)}</p>`;
  }
}

function show(view) {
  state.view = view;
  state.flash = "";
  state.held = null;
  document.querySelectorAll("#tabs button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.view === view)));
  render();
}

let source = null;
function listen() {
  if (source) return;
  source = new EventSource("/v1/events");
  source.addEventListener("change", () => render());
}

document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
$("#lang").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", state.lang);
  applyI18n();
  if (state.session) render();
});
$("#signout").addEventListener("click", async () => {
  await fetch("/v1/session", { method: "DELETE" });
  if (source) { source.close(); source = null; }
  signedOut();
});
$("#signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/v1/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: $("#token").value }) });
  if (!r.ok) { $("#signin-error").textContent = t("bad_token"); return; }
  $("#signin-error").textContent = "";
  $("#token").value = "";
  signedIn(await r.json());
});

applyI18n();
fetch("/v1/session", { credentials: "same-origin" }).then((r) => (r.ok ? r.json().then(signedIn) : signedOut()));
