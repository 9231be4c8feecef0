// followsift dashboard: everything goes through the JSON API with the key from localStorage.
// Data from the API is only ever put into the page as text (textContent), never as HTML.
"use strict";

const KEY_STORAGE = "followsift.apiKey";
const POLL_MS = 2000;
const PAGE_SIZE = 50;
const ENDED = new Set(FOLLOWSIFT_STATUSES.jobEnded);  // from /dashboard/statuses.js
const GENDER_LABELS = { female: "women", male: "men", unknown: "unknown", any: "everyone" };
const INSTAGRAM = "https://www.instagram.com/";

const $ = (id) => document.getElementById(id);
const state = { newest: [], older: [], jobsCursor: null, selected: null, pages: [null], pageIndex: 0, nextCursor: null, timer: null };

// -- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${localStorage.getItem(KEY_STORAGE)}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 204) return null;
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const error = body && body.error ? body.error : { code: "http_error", message: `HTTP ${response.status}` };
    const details = (error.details || []).map((d) => d.value || `${d.field}: ${d.message}`).join(", ");
    throw new ApiError(response.status, error.code, details ? `${error.message} (${details})` : error.message);
  }
  return options.raw ? response : response.json();
}

function show(message, kind = "error") {
  const box = $("message");
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

// -- elements --------------------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? wrap("td", cell) : el("td", cell));
  return tr;
}

function wrap(tag, child) {
  const node = document.createElement(tag);
  node.append(child);
  return node;
}

function progressBar(job) {
  const bar = el("div", null, "bar");
  const fill = el("div", null, `fill ${job.status}`);
  fill.style.width = `${job.progress}%`;
  bar.append(fill);
  bar.title = `${job.batches_done} of ${job.total_batches} batches`;
  const box = el("div", null, "progress");
  box.append(bar, el("span", `${Math.round(job.progress)}%`));
  return box;
}

// Only http(s) URLs from the API go into an href or a src (never javascript:, data:, ...).
function safeUrl(text) {
  try {
    const url = new URL(text);
    return ["https:", "http:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function profileLink(profile) {
  const link = el("a", null, "profile");
  link.href = `${INSTAGRAM}${encodeURIComponent(profile.username)}/`;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  const picture = profile.profile_pic_url && safeUrl(profile.profile_pic_url);
  if (picture) link.append(avatar(picture));
  link.append(document.createTextNode(profile.username));
  return link;
}

function avatar(src) {
  const img = el("img", null, "avatar");
  img.alt = "";
  img.referrerPolicy = "no-referrer";  // Instagram's CDN learns nothing about this page
  img.loading = "lazy";
  img.addEventListener("error", () => { img.hidden = true; });  // expired (or, emulated, made-up) pictures
  img.src = src;
  return img;
}

const number = (n) => Number(n).toLocaleString("en");
const when = (iso) => new Date(iso).toLocaleString();

// -- the server and the key -----------------------------------------------------------------

async function loadInfo() {
  const response = await fetch("/dashboard/info.json");
  if (response.ok) $("synthetic").hidden = !(await response.json()).synthetic;
}

function askForKey(message, kind) {
  $("app").hidden = true;
  $("key-hint").hidden = false;
  show(message, kind);
}

async function useKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
  try {
    await loadJobs();
  } catch (error) {
    localStorage.removeItem(KEY_STORAGE);
    askForKey(error.status === 401 ? "That API key was not accepted." : error.message);
    return;
  }
  show("");
  $("key-hint").hidden = true;
  $("api-key").value = "";
  $("api-key").placeholder = "key saved in this browser";
  $("app").hidden = false;
  schedule();
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  clearTimeout(state.timer);
  $("api-key").placeholder = "fs_…";
  askForKey("Key forgotten.", "info");
}

// -- creating a job --------------------------------------------------------------------------

function parseAccounts(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

function readCsv(file) {
  Papa.parse(file, {
    skipEmptyLines: true,
    complete: ({ data }) => {
      const header = data[0].map((cell) => String(cell).trim().toLowerCase());
      let column = header.findIndex((name) => ["username", "account", "accounts", "handle", "instagram"].includes(name));
      const rows = column >= 0 ? data.slice(1) : data;
      column = Math.max(column, 0);
      const names = rows.map((r) => String(r[column] || "").trim()).filter(Boolean);
      const current = $("accounts").value.trim();
      $("accounts").value = (current ? current + "\n" : "") + names.join("\n");
      show(`${names.length} accounts read from ${file.name}.`, "info");
    },
    error: (error) => show(`Could not read ${file.name}: ${error.message}`),
  });
}

async function createJob(event) {
  event.preventDefault();
  const body = {
    accounts: parseAccounts($("accounts").value),
    targetGender: $("gender").value,
    totalScrapeCount: Number($("total").value),
  };
  if ($("confidence").value !== "") body.minConfidence = Number($("confidence").value);
  if ($("max-age").value !== "") body.maxAgeDays = Number($("max-age").value);
  $("create-job").disabled = true;
  try {
    const job = await api("/api/scrape-followers", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const reused = job.accounts_reused ? `, ${job.accounts_reused} of them from stored lists` : "";
    show(`Job started: ${job.accounts} accounts${reused} in ${job.total_batches} batch${job.total_batches === 1 ? "" : "es"}.`, "info");
    $("accounts").value = "";
    await loadJobs();
    selectJob(job.job_id);
  } catch (error) {
    show(error.message);
  } finally {
    $("create-job").disabled = false;
  }
}

// -- the jobs list ---------------------------------------------------------------------------

// The newest page is polled; older pages, once asked for, stay as they were loaded.
async function loadJobs() {
  const page = await api("/api/jobs?limit=20");
  state.newest = page.jobs;
  if (!state.older.length) state.jobsCursor = page.next_cursor;
  renderJobs();
}

async function loadOlderJobs() {
  const page = await api(`/api/jobs?limit=20&cursor=${encodeURIComponent(state.jobsCursor)}`);
  state.older.push(...page.jobs);
  state.jobsCursor = page.next_cursor;
  renderJobs();
}

function allJobs() {
  const newest = new Set(state.newest.map((job) => job.job_id));
  return [...state.newest, ...state.older.filter((job) => !newest.has(job.job_id))];
}

function renderJobs() {
  const jobs = allJobs();
  const rows = jobs.map((job) => {
    const tr = row([when(job.created_at), job.accounts, GENDER_LABELS[job.target_gender], progressBar(job),
                    number(job.profiles_kept), el("span", job.status, `status ${job.status}`)]);
    tr.dataset.jobId = job.job_id;
    tr.className = job.job_id === state.selected ? "selected" : "";
    tr.addEventListener("click", () => selectJob(job.job_id));
    return tr;
  });
  $("job-rows").replaceChildren(...rows);
  $("no-jobs").hidden = jobs.length > 0;
  $("more-jobs").hidden = !state.jobsCursor;
  const job = jobs.find((j) => j.job_id === state.selected);
  if (job) renderJob(job);
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    const before = allJobs().find((j) => j.job_id === state.selected);
    try {
      await loadJobs();
    } catch (error) {
      show(error.message);
    }
    const after = allJobs().find((j) => j.job_id === state.selected);
    // A running job's first page fills up as batches end: keep it fresh.
    if (after && state.pageIndex === 0 && (!before || before.profiles_kept !== after.profiles_kept)) {
      loadResults().catch((error) => show(error.message));
      loadAccounts().catch((error) => show(error.message));
    }
    schedule();
  }, POLL_MS);
}

// -- one job ---------------------------------------------------------------------------------

function selectJob(jobId) {
  state.selected = jobId;
  state.pages = [null];
  state.pageIndex = 0;
  $("job").hidden = false;
  renderJobs();
  loadResults().catch((error) => show(error.message));
  loadAccounts().catch((error) => show(error.message));
}

async function loadAccounts() {
  // The job's first 100 accounts by name, and the overlap of its largest ones.
  const jobId = state.selected;
  const [page, overlap] = await Promise.all([api(`/api/jobs/${jobId}/accounts?limit=100`),
    api(`/api/jobs/${jobId}/overlap?top=6`)]);
  if (jobId !== state.selected) return;
  $("account-rows").replaceChildren(...page.accounts.map((a) => row([
    a.account, el("span", a.cut_by ? `cut: ${a.cut_by}` : a.status, `status ${a.status}`), number(a.requested),
    number(a.scraped), number(a.kept),
    `${number(a.gender_breakdown.female)} / ${number(a.gender_breakdown.male)}`, a.reason || "",
  ])));
  const shared = new Map(overlap.shared.map((p) => [`${p.a} ${p.b}`, p.shared]));
  const cell = (x, y) => (x === y ? `${number(overlap.unique[x])} only` : number(shared.get(`${x} ${y}`) ?? shared.get(`${y} ${x}`) ?? 0));
  $("overlap-head").replaceChildren(row(["", ...overlap.accounts]));
  $("overlap-rows").replaceChildren(...overlap.accounts.map((x) => row([x, ...overlap.accounts.map((y) => cell(x, y))])));
}

function renderJob(job) {
  $("job-id").textContent = job.job_id;
  $("job-status").textContent = job.status;
  $("job-status").className = `status ${job.status}`;
  $("job-error").textContent = job.error_message || "";
  $("job-error").hidden = !job.error_message;
  drawChart(job.gender_breakdown);
  const facts = [
    ["Followers scraped", number(job.profiles_scraped)],
    ["Profiles kept", number(job.profiles_kept)],
    ["Batches", `${job.batches_done} / ${job.total_batches}` + (job.batches_failed ? ` (${job.batches_failed} failed)` : "")],
    ["Min. confidence", job.min_confidence],
  ];
  if (job.cost_usd !== undefined) facts.push(["Apify cost", `$${Number(job.cost_usd).toFixed(2)}`]);
  if (job.reuse && job.reuse.accounts) {
    facts.push(["From stored lists", `${number(job.reuse.accounts)} accounts, ${number(job.reuse.followers)} followers ` +
                                     `(saved ${job.reuse.runs_saved} runs, $${Number(job.reuse.usd_saved).toFixed(2)})`]);
  }
  $("job-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", term), el("dd", value)]));
}

function drawChart(breakdown) {
  // Three horizontal bars, drawn as SVG: no chart library needed for this.
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const total = breakdown.male + breakdown.female + breakdown.unknown;
  const bars = [["female", breakdown.female], ["male", breakdown.male], ["unknown", breakdown.unknown]];
  const shapes = bars.flatMap(([gender, count], i) => {
    const y = 8 + i * 34;
    const share = total ? count / total : 0;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 0);
    label.setAttribute("y", y + 17);
    label.textContent = GENDER_LABELS[gender];
    const track = document.createElementNS(ns, "rect");
    Object.entries({ x: 80, y, width: 220, height: 24, rx: 4, class: "track" }).forEach(([k, v]) => track.setAttribute(k, v));
    const bar = document.createElementNS(ns, "rect");
    Object.entries({ x: 80, y, width: Math.max(220 * share, 0), height: 24, rx: 4, class: `bar-${gender}` })
      .forEach(([k, v]) => bar.setAttribute(k, v));
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", 308);
    value.setAttribute("y", y + 17);
    value.textContent = `${number(count)} (${Math.round(share * 100)}%)`;
    return [label, track, bar, value];
  });
  svg.replaceChildren(...shapes);
}

async function loadResults() {
  const jobId = state.selected;
  const cursor = state.pages[state.pageIndex];
  const query = cursor ? `cursor=${encodeURIComponent(cursor)}` : "page=1";
  const page = await api(`/api/job-results/${jobId}?limit=${PAGE_SIZE}&${query}`);
  if (jobId !== state.selected) return;
  state.nextCursor = page.next_cursor;
  const rows = page.profiles.map((p) => row([
    profileLink(p), p.full_name, el("span", GENDER_LABELS[p.gender] || p.gender, `gender ${p.gender}`),
    p.gender_confidence.toFixed(2), p.source_accounts.join(", "),
  ]));
  $("result-rows").replaceChildren(...rows);
  const first = state.pageIndex * PAGE_SIZE;
  $("page-info").textContent = page.total
    ? `${number(first + 1)}–${number(first + page.profiles.length)} of ${number(page.total)}`
    : "no results yet";
  $("prev-page").disabled = state.pageIndex === 0;
  $("next-page").disabled = !page.next_cursor;
}

function turnPage(step) {
  if (step > 0) {
    state.pages[state.pageIndex + 1] = state.nextCursor;
  }
  state.pageIndex += step;
  loadResults().catch((error) => show(error.message));
}

// -- download --------------------------------------------------------------------------------

async function download() {
  const jobId = state.selected;
  $("download").disabled = true;
  try {
    const blob = await (await api(`/api/job-results/${jobId}/export?format=csv`, { raw: true })).blob();
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = `followsift-${jobId}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    show(error.message);
  } finally {
    $("download").disabled = false;
  }
}


// -- start -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("api-key").value.trim());
  });
  $("forget-key").addEventListener("click", forgetKey);
  $("job-form").addEventListener("submit", createJob);
  $("accounts-file").addEventListener("change", (event) => {
    if (event.target.files[0]) readCsv(event.target.files[0]);
    event.target.value = "";
  });
  $("more-jobs").addEventListener("click", () => loadOlderJobs().catch((error) => show(error.message)));
  $("prev-page").addEventListener("click", () => turnPage(-1));
  $("next-page").addEventListener("click", () => turnPage(1));
  $("download").addEventListener("click", download);
  loadInfo().catch(() => {});  // without it the page works, only the banner stays hidden
  if (localStorage.getItem(KEY_STORAGE)) useKey(localStorage.getItem(KEY_STORAGE));
  else askForKey("");
});
