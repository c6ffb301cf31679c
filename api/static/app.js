// jointspace web page: plain JS, no build step. The query lives in the URL (?q=&mode=&city=),
// so a search can be shared and the back button works.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

const state = {
  q: "",
  mode: "semantic",
  city: "",
  sort: "relevance",  // or "newest": newest first among the matching posts (facets17)
  minScore: "",       // the similarity cut-off of the match set: a number, "auto", or "" = none (facets17)
  page: 1,
  k: 24,
  photo: null,        // a File: searches go through POST /search while it is set
  photoUrl: null,
  lastHits: [],
  busy: false,
  requestId: 0,
  refocusId: null,    // the post whose card takes the focus once the grid is drawn again
};

// ---- the query's terms, for the chips ------------------------------------------------------
// A light mirror of the server's grammar, only to split the top level into signed, weighted
// terms and filters. The server stays the judge: if this cannot split a query, no chips show
// and the server's error (with its position) explains.
function splitQuery(text) {
  const items = [];
  let i = 0;
  let sign = 1;
  let weight = 1;
  const n = text.length;
  const readQuoted = (start) => {
    let j = start + 1;
    while (j < n) {
      if (text[j] === "\\") { j += 2; continue; }
      if (text[j] === '"') return j + 1;
      j++;
    }
    throw new Error("unterminated quote");
  };
  while (i < n) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === "+" || c === "-") { sign = c === "-" ? -1 : 1; i++; continue; }
    const num = /^(\d+(?:\.\d+)?)\s*\*/.exec(text.slice(i));
    if (num) { weight = parseFloat(num[1]); i += num[0].length; continue; }
    let end;
    let kind = "term";
    if (c === "(") {
      let depth = 0;
      end = i;
      for (; end < n; end++) {
        if (text[end] === '"') { end = readQuoted(end) - 1; continue; }
        if (text[end] === "(") depth++;
        if (text[end] === ")" && --depth === 0) break;
      }
      if (end >= n) throw new Error("unbalanced parentheses");
      end++;
    } else if (c === '"') {
      end = readQuoted(i);
    } else if (c === "[") {
      end = text.indexOf("]", i);
      if (end < 0) throw new Error("unterminated image reference");
      end++;
    } else {
      const filter = /^(\w+):/.exec(text.slice(i));
      if (filter) {
        kind = "filter";
        end = i + filter[0].length;
        while (end < n) {
          if (text[end] === '"') end = readQuoted(end);
          else { const bare = /^[^\s,()"\[\]]+/.exec(text.slice(end)); if (!bare) break; end += bare[0].length; }
          if (text[end] === ",") end++; else break;
        }
      } else {
        const word = /^#?[\p{L}\p{N}_]+(?:['’.][\p{L}\p{N}_]+)*/u.exec(text.slice(i));
        if (!word) throw new Error("unexpected character");
        end = i + word[0].length;
      }
    }
    items.push({ kind, text: text.slice(i, end), sign: kind === "filter" ? 1 : sign, weight: kind === "filter" ? 1 : weight });
    sign = 1;
    weight = 1;
    i = end;
  }
  return items;
}

function fmtWeight(w) {
  return Number.isInteger(w) ? String(w) : String(Math.round(w * 100) / 100);
}

function joinQuery(items) {
  const terms = [];
  const filters = [];
  for (const item of items) {
    if (item.kind === "filter") { filters.push(item.text); continue; }
    const w = item.weight === 1 ? "" : `${fmtWeight(item.weight)}*`;
    const op = item.sign < 0 ? "-" : (terms.length ? "+" : "");
    terms.push(`${op}${w}${item.text}`);
  }
  return [terms.join(""), filters.join(" ")].filter(Boolean).join(" ");
}

function imageIdOf(termText) {
  const m = /^\[\s*(?:img\s*:|img_)\s*([^\]\s]+)\s*\]$/i.exec(termText);
  return m ? m[1] : null;
}

// ---- URL state ------------------------------------------------------------------------------
function readUrl() {
  const params = new URLSearchParams(location.search);
  state.q = params.get("q") || "";
  state.mode = ["semantic", "keyword", "hybrid"].includes(params.get("mode")) ? params.get("mode") : "semantic";
  state.city = cityOf(params.get("city") || "");
  state.sort = params.get("sort") === "newest" ? "newest" : "relevance";
  state.minScore = minScoreOf(params.get("min_score") || "");
}

// A city as ingest stores it (ingest/validate.py normalise_city): runs of white space made one
// space, trimmed, lower-cased. `?city=Tokyo` is the indexed `tokyo`, not a city of its own.
function cityOf(text) {
  return String(text).split(/\s+/).filter(Boolean).join(" ").toLowerCase();
}

function writeUrl(push) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.mode !== "semantic") params.set("mode", state.mode);
  if (state.city) params.set("city", state.city);
  if (state.sort !== "relevance") params.set("sort", state.sort);
  if (state.minScore !== "") params.set("min_score", state.minScore);
  const url = params.toString() ? `?${params}` : location.pathname;
  if (url === location.search || (!params.toString() && !location.search)) return;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function syncControls() {
  $("#q").value = state.q;
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.checked = radio.value === state.mode;
  const select = $("#city");
  if (state.city && ![...select.options].some((o) => o.value === state.city)) {
    select.append(el("option", { value: state.city, text: state.city }));
  }
  select.value = state.city;
  syncSort();
  renderChips();
}

// ---- chips ----------------------------------------------------------------------------------
function renderChips() {
  const box = $("#chips");
  box.replaceChildren();
  let items;
  try { items = splitQuery(state.q); } catch { return; }
  items.forEach((item, index) => {
    const id = imageIdOf(item.text);
    const classes = ["chip", item.kind === "filter" ? "filter" : "", item.sign < 0 ? "minus" : ""].join(" ").trim();
    const label = item.kind === "filter" ? item.text : `${item.sign < 0 ? "−" : "+"} ${item.text}`;
    const weightInput = item.kind === "filter" ? null : el("input", {
      type: "number", class: "weight", min: "0.25", max: "100", step: "any", value: fmtWeight(item.weight),
      title: "Weight of this term", "aria-label": `Weight of ${item.text}`,
      onchange: (ev) => {
        const w = parseFloat(ev.target.value);
        if (!Number.isFinite(w) || w <= 0) { ev.target.value = fmtWeight(item.weight); return; }
        item.weight = Math.min(w, 100);
        setQuery(joinQuery(items), true);
      },
    });
    const flip = item.kind === "filter" ? null : el("button", {
      type: "button", title: "Flip add / subtract", "aria-label": `Flip the sign of ${item.text}`,
      text: "±", onclick: () => { item.sign = -item.sign; setQuery(joinQuery(items), true); },
    });
    const chip = el("span", { class: classes, "data-term": item.text },
      id ? el("img", { src: `/posts/${encodeURIComponent(id)}/thumbnail`, alt: "" }) : null,
      el("span", { text: label }),
      weightInput, flip,
      el("button", {
        type: "button", "aria-label": `Remove ${item.text}`, title: "Remove", text: "×",
        onclick: () => { items.splice(index, 1); setQuery(joinQuery(items), true); },
      }));
    box.append(chip);
  });
}

function setQuery(q, push) {
  state.q = q.trim();
  state.page = 1;
  syncControls();
  runSearch(push);
}

function addTerm(term, sign, weight) {
  let items;
  try { items = splitQuery(state.q); } catch { items = null; }
  if (!items) {
    // The current text does not split: append as text and let the server judge it.
    setQuery(`${state.q}${sign < 0 ? "-" : "+"}${weight === 1 ? "" : fmtWeight(weight) + "*"}${term}`, true);
    return;
  }
  const existing = items.find((it) => it.kind !== "filter" && it.text === term);
  if (existing) {
    existing.sign = sign;
    existing.weight = weight;
  } else {
    items.push({ kind: "term", text: term, sign, weight });
  }
  setQuery(joinQuery(items), true);
}

// ---- search ---------------------------------------------------------------------------------
async function runSearch(push, append = false) {
  writeUrl(push);
  if (!state.q && !state.photo) {
    renderHits([], false, false);
    clearFacets();
    $("#status").textContent = "Type a query, or drop a photo.";
    $("#explain").replaceChildren(el("p", { class: "muted", text: "The words nearest to your query will show here." }));
    clearError();
    return;
  }
  const requestId = ++state.requestId;
  $("#status").textContent = "Searching…";
  let response;
  try {
    if (state.photo) {
      const form = new FormData();
      form.append("image", state.photo);
      form.append("q", state.q);
      form.append("mode", state.mode);
      form.append("k", String(state.k));
      form.append("page", String(state.page));
      if (state.city) form.append("city", state.city);
      for (const [name, value] of facetParams(append)) form.append(name, value);
      response = await fetch("/search", { method: "POST", body: form });
    } else {
      const params = new URLSearchParams({ q: state.q, mode: state.mode, k: state.k, page: state.page });
      if (state.city) params.set("city", state.city);
      for (const [name, value] of facetParams(append)) params.set(name, value);
      response = await fetch(`/search?${params}`);
    }
  } catch {
    if (requestId === state.requestId) {
      serverFailed("The server cannot be reached (is jointspace serve running?). Search again when it is back.", append);
    }
    return;
  }
  if (requestId !== state.requestId) return; // a newer search started meanwhile
  const body = await response.json().catch(() => ({ message: response.statusText }));
  if (response.status >= 500) {
    // The server failed, not the query: say so where the result count goes, and leave the query alone.
    const why = [response.status, body.message || response.statusText].filter(Boolean).join(": ");
    serverFailed(`The server could not answer (${why}). Try again in a moment.`, append);
    return;
  }
  if (!response.ok) {
    state.refocusId = null;
    showError(body);
    $("#explain").replaceChildren(el("p", { class: "muted", text: "Fix the query to see why results match." }));
    if (!append) { renderHits([], false, false); clearFacets(); }
    $("#status").textContent = "";
    return;
  }
  clearError();
  const hits = append ? state.lastHits.concat(body.hits) : body.hits;
  state.lastHits = hits;
  renderHits(hits, body.has_more, append);
  renderExplain(body.explain || {});
  if (!append) renderFacets(body);
  refocusResults();
  if (!hits.length && state.minScore !== "" && semantic()) { hiddenByCutOff(body.explain || {}); return; }
  $("#status").textContent = hits.length
    ? `${hits.length} result${hits.length === 1 ? "" : "s"}${state.city ? ` in ${state.city}` : ""}`
    : "No results.";
}

// Nothing passed the similarity cut-off: say that it hid the results (a bare "No results." read as
// an empty index) and offer to clear "At least". The wording follows `jointspace search`'s.
function hiddenByCutOff(explain) {
  const auto = explain.min_score_auto;
  const why = state.minScore !== "auto"
    ? `No results at least ${state.minScore} similar: the cut-off ("At least") hid them.`
    : Number.isFinite(auto)
      ? `No results: none scored above ${Number(auto).toFixed(3)}, the cut-off "At least" auto read from the`
        + " nearest posts' scores (nothing stood out from the rest)."
      : `No results with the cut-off "At least" auto.${explain.min_score_note ? ` ${explain.min_score_note}` : ""}`;
  $("#status").replaceChildren(why, " ", el("button", { type: "button", class: "ghost clear-cut-off",
    text: "Clear \u201cAt least\u201d", onclick: () => { state.minScore = ""; state.page = 1; syncSort(); runSearch(true); } }));
}

// The search did not run: the previous query's results, counts and words go, so that nothing on the
// page answers a query the server never saw (they stayed, clickable, under the new query). A failed
// "Load more" keeps the results of the same query that are already shown, and its button.
function serverFailed(text, append = false) {
  state.refocusId = null;
  clearError();
  if (append) state.page -= 1;  // "Load more" again asks for the same page
  else {
    state.lastHits = [];
    renderHits([], false, false);
    clearFacets();
    $("#explain").replaceChildren(el("p", { class: "muted", text: "No results: the search did not run." }));
  }
  $("#status").textContent = text;
}

function showError(body) {
  const box = $("#query-error");
  const input = $("#q");
  box.replaceChildren(el("strong", { text: body.message || "The search failed." }));
  if (typeof body.position === "number" && state.q) {
    const pos = Math.min(body.position, state.q.length);
    const at = state.q.slice(pos, pos + 1) || " ";
    box.append(el("code", {}, state.q.slice(0, pos), el("mark", { text: at }), state.q.slice(pos + 1)));
    input.focus();
    input.setSelectionRange(pos, Math.min(pos + 1, state.q.length));
  }
  if (Array.isArray(body.suggestions) && body.suggestions.length) {
    const suggest = el("span", { class: "suggest" }, " Did you mean");
    for (const word of body.suggestions.slice(0, 5)) {
      suggest.append(el("button", { type: "button", text: word, onclick: () => replaceAt(body.position, word) }));
    }
    box.append(suggest);
  }
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
}

function replaceAt(position, word) {
  if (typeof position !== "number") { setQuery(word, true); return; }
  const rest = state.q.slice(position);
  const m = /^[#\p{L}\p{N}_'’.]+/u.exec(rest);
  const len = m ? m[0].length : 0;
  setQuery(state.q.slice(0, position) + word + state.q.slice(position + len), true);
}

function clearError() {
  $("#query-error").hidden = true;
  $("#query-error").replaceChildren();
  $("#q").removeAttribute("aria-invalid");
}

// ---- results --------------------------------------------------------------------------------
function clickSign() { return $("#click-sign").getAttribute("aria-pressed") === "true" ? -1 : 1; }
function clickWeight() {
  const w = parseFloat($("#click-weight").value);
  return Number.isFinite(w) && w > 0 ? Math.min(w, 100) : 1;
}

function renderHits(hits, hasMore, append) {
  const grid = $("#grid");
  const start = append ? grid.children.length : 0;
  if (!append) grid.replaceChildren();
  const inQuery = new Set();
  try { for (const it of splitQuery(state.q)) { const id = imageIdOf(it.text); if (id) inQuery.add(id); } } catch { /* no chips */ }
  hits.slice(start).forEach((hit) => grid.append(card(hit, inQuery.has(hit.id))));
  $("#more").hidden = !hasMore;
}

// A result added from the keyboard (Enter on it, or a button of its detail view) re-runs the search
// and re-draws the grid: the focus goes back to that post (else the first result), not to <body>.
function refocusResults() {
  const id = state.refocusId;
  state.refocusId = null;
  if (id == null) return;
  const cards = [...$("#grid").children];
  const target = cards.find((c) => c.dataset.id === id) || cards[0];
  if (target) target.focus();
}

function card(hit, added) {
  const caption = hit.caption || (hit.hashtags || []).map((t) => `#${t}`).join(" ") || "(no caption)";
  const add = () => addTerm(`[img:${hit.id}]`, clickSign(), clickWeight());
  const item = el("li", {
    class: `card${added ? " added" : ""}`, tabindex: "0", "data-id": hit.id,
    "aria-label": `${caption}. Press Enter to add it to the query, i for details.`,
    onclick: (ev) => { if (!ev.target.closest(".info")) add(); },
    onkeydown: (ev) => {
      if (ev.target !== item) return;
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); state.refocusId = hit.id; add(); }
      else if (ev.key === "i") { ev.preventDefault(); openDetail(hit); }
      else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        const next = ev.key === "ArrowRight" ? item.nextElementSibling : item.previousElementSibling;
        if (next) { ev.preventDefault(); next.focus(); }
      }
    },
  },
  el("img", { class: "thumb", src: hit.thumbnail_url, alt: caption, loading: "lazy", width: "320", height: "320",
    onerror: (ev) => showUnavailable(ev.target, hit.thumbnail_url) }),
  el("button", { type: "button", class: "info", title: "Details", "aria-label": `Details of ${caption}`, text: "i",
    onclick: (ev) => { ev.stopPropagation(); openDetail(hit); } }),
  el("div", { class: "body" },
    el("p", { class: "cap", text: caption }),
    el("div", { class: "meta" },
      el("span", { class: "city", text: hit.city || "" }),
      state.sort === "newest" && hit.created_at
        ? el("time", { class: "date", datetime: hit.created_at, text: hit.created_at.slice(0, 10) }) : null,
      el("span", { class: "score", title: "score", text: hit.score.toFixed(3) }))));
  return item;
}

// A picture the server will not serve becomes a placeholder that says why (the 404's message:
// outside the allowed media roots, missing, not a raster image...).
async function showUnavailable(img, url) {
  let reason = "the picture could not be loaded";
  try {
    const response = await fetch(url);
    if (!response.ok) {
      const body = await response.json();
      const message = String(body.message || "");
      reason = message.includes(": ") ? message.slice(message.indexOf(": ") + 2) : (message || reason);
    }
  } catch { /* offline: keep the generic reason */ }
  const box = el("div", { class: "thumb unavailable", role: "img", "aria-label": `Picture not shown: ${reason}` },
    el("span", { class: "why", text: `Picture not shown: ${reason}` }));
  if (img.isConnected) img.replaceWith(box);
}

function pairs(list) {
  // The explanation's words may come as [word, score] pairs or {word, score} objects.
  return (list || []).map((x) => (Array.isArray(x) ? { word: x[0], score: x[1] } : x));
}

function renderExplain(explain) {
  const box = $("#explain");
  box.replaceChildren();
  const words = pairs(explain.nearest_words || explain.words);
  if (words.length) {
    box.append(el("h3", { text: "Nearest words" }));
    const list = el("div", { class: "words" });
    for (const w of words) {
      list.append(el("button", { type: "button", class: "word", title: "Add this word to the query",
        onclick: () => addTerm(w.word, 1, 1) }, w.word, el("small", { text: Number(w.score).toFixed(2) })));
    }
    box.append(list);
  }
  const terms = explain.terms || explain.shares || [];
  if (terms.length) {
    box.append(el("h3", { text: "Each term's share" }));
    const grid = el("div", { class: "share" });
    const max = Math.max(...terms.map((t) => Math.abs(Number(t.contribution ?? t.weight ?? 0))), 1e-9);
    for (const t of terms) {
      const share = Number(t.contribution ?? t.weight ?? 0);
      grid.append(el("span", { text: t.text || t.term || "" }),
        el("span", { class: `bar${share < 0 || Number(t.weight) < 0 ? " minus" : ""}`,
          style: `width:${Math.max(4, (Math.abs(share) / max) * 100)}%`, title: share.toFixed(3) }));
    }
    box.append(grid);
  }
  if (explain.parsed !== undefined) {
    const ms = explain.timings_ms && explain.timings_ms.total;
    box.append(el("h3", { text: "Read as" }),
      el("p", { class: "plan" }, el("code", { text: explain.parsed || (state.photo ? "(your photo)" : "(filters only)") }),
        ` · ${explain.mode}${ms !== undefined ? ` · ${Number(ms).toFixed(1)} ms` : ""}`));
  }
  if (!box.children.length) box.append(el("p", { class: "muted", text: "No explanation for this search." }));
}

// ---- detail view ----------------------------------------------------------------------------
let detailHit = null;

async function openDetail(hit) {
  detailHit = hit;
  const dialog = $("#detail");
  $("#detail-image").hidden = false;
  $("#detail-image").nextElementSibling?.classList.contains("unavailable") && $("#detail-image").nextElementSibling.remove();
  $("#detail-image").onerror = async () => {
    const img = $("#detail-image");
    const holder = el("img");
    img.after(holder);
    await showUnavailable(holder, hit.image_url);
    img.hidden = true;
  };
  $("#detail-image").src = hit.image_url;
  $("#detail-image").alt = hit.caption || "";
  $("#detail-caption").textContent = hit.caption || "(no caption)";
  const when = hit.created_at ? new Date(hit.created_at).toLocaleDateString() : "";
  $("#detail-meta").textContent = [hit.city, when, hit.author && `by ${hit.author}`, `id ${hit.id}`].filter(Boolean).join(" · ");
  $("#detail-tags").replaceChildren(...(hit.hashtags || []).map((t) => el("span", { text: `#${t}` })));
  const words = $("#detail-words");
  words.replaceChildren(el("span", { class: "muted", text: "…" }));
  if (!dialog.open) dialog.showModal();
  try {
    const response = await fetch(`/posts/${encodeURIComponent(hit.id)}/describe?k=12`);
    const body = await response.json();
    if (detailHit !== hit) return;
    words.replaceChildren(...pairs(body.words).map((w) => el("button", {
      type: "button", class: "word", title: "Add this word to the query",
      onclick: () => { dialog.close(); addTerm(w.word, 1, 1); },
    }, w.word, el("small", { text: Number(w.score).toFixed(2) }))));
  } catch {
    words.replaceChildren(el("span", { class: "muted", text: "No words available." }));
  }
}

// ---- photo search ---------------------------------------------------------------------------
function setPhoto(file) {
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photo = file;
  state.photoUrl = file ? URL.createObjectURL(file) : null;
  const chip = $("#photo-chip");
  chip.replaceChildren();
  chip.hidden = !file;
  if (file) {
    chip.append(el("img", { src: state.photoUrl, alt: "Your photo" }),
      el("span", { text: `Searching with your photo${state.q ? " and the terms above" : ""}.` }),
      el("button", { type: "button", class: "ghost", text: "Remove photo", onclick: () => setPhoto(null) }));
  }
  state.page = 1;
  runSearch(false);
}

// ---- facets17: facet counts, trend chart and sort ------------------------------------------
// Facets count the matching posts (the server's match set: the nearest posts above min_score, or
// the facet_depth nearest; in keyword mode the best text matches); a click on a city filters by
// it, a click on a hashtag adds `tag:NAME` to the query (a filter chip). The trend chart is plain
// SVG drawn from GET /trends, which follows the query's meaning: it hides in keyword mode, as does
// the similarity cut-off, which only applies to vectors.
const FACETS = "city,hashtags";
const TREND_COLOURS = ["#4f46e5", "#0e7490", "#c2410c", "#15803d", "#a21caf"];
const SVG_NS = "http://www.w3.org/2000/svg";
let trendRequest = 0;

function semantic() { return state.mode !== "keyword"; }

function facetParams(append) {
  const out = state.minScore !== "" && semantic() ? [["min_score", state.minScore]] : [];
  if (!append) out.push(["facets", FACETS]);   // "Load more" keeps the counts it has
  if (state.sort !== "relevance") out.push(["sort", state.sort]);
  return out;
}

// The cut-off as typed or in the URL: a similarity (kept within -1..1), "auto" (the server picks one
// from the query's own best scores, as `--min-score auto`), or "" (none) for anything else.
function minScoreOf(text) {
  const typed = String(text).trim().toLowerCase();
  if (typed === "auto") return "auto";
  const value = parseFloat(typed);
  return Number.isFinite(value) ? String(Math.max(-1, Math.min(1, value))) : "";
}

function syncSort() {
  $("#sort").value = state.sort;
  const cut = $("#min-score");
  cut.disabled = !semantic();
  cut.title = semantic() ? "Only posts at least this similar to the query (0 to 1), or auto: a cut-off from the"
      + " query's own best scores; empty: the nearest ones"
    : "Keyword scores are not similarities: no cut-off in keyword mode";
  cut.value = state.minScore;
}

function clearFacets() {
  $("#facets").hidden = true;
  for (const id of ["#facet-city", "#facet-hashtags", "#trend-chart", "#trend-legend"]) $(id).replaceChildren();
  $("#facets-summary").textContent = "";
}

function tagFilters() {
  // The `tag:` filters written in the query, lower-cased (a tag:a,b filter lists several).
  let items;
  try { items = splitQuery(state.q); } catch { return new Set(); }
  const tags = items.filter((it) => it.kind === "filter" && /^tag:/i.test(it.text))
    .flatMap((it) => it.text.slice(4).split(",")).map((t) => t.replace(/^"|"$/g, "").toLowerCase());
  return new Set(tags);
}

function toggleTag(tag) {
  let items;
  try { items = splitQuery(state.q); } catch { setQuery(`${state.q} tag:${tag}`, true); return; }
  const present = items.findIndex((it) => it.kind === "filter" && it.text.toLowerCase() === `tag:${tag}`);
  if (present >= 0) items.splice(present, 1);
  else items.push({ kind: "filter", text: `tag:${/^[\p{L}\p{N}_-]+$/u.test(tag) ? tag : JSON.stringify(tag)}`, sign: 1, weight: 1 });
  setQuery(joinQuery(items), true);
}

function facetList(target, buckets, isOn, onPick, label) {
  target.replaceChildren(...buckets.map((b) => el("li", {},
    // The visible text is the accessible name (no aria-label that would differ from it).
    el("button", { type: "button", class: "facet-value", "aria-pressed": String(isOn(b.value)),
      "data-value": b.value, title: `${label} ${b.value}`, onclick: () => onPick(b.value) },
    el("span", { class: "facet-name", text: b.value }), " ",
    el("span", { class: "facet-count" }, String(b.count), el("span", { class: "visually-hidden", text: " matching posts" }))))));
  if (!buckets.length) target.append(el("li", { class: "muted", text: "None among the matches." }));
}

function renderFacets(body) {
  const facets = body.facets;
  if (!facets) { clearFacets(); return; }
  $("#facets").hidden = false;
  const match = (body.explain && body.explain.match) || {};
  $("#facets-summary").textContent = match.kind === "keyword" ? `Counted over the ${facets.matching} best text matches`
    : match.min_score != null ? `${facets.matching} posts at least ${Number(match.min_score).toFixed(2)} similar`
      + (state.minScore === "auto" ? " (auto)" : "")
    : `Counted over the ${facets.matching} nearest posts`;
  facetList($("#facet-city"), facets.fields.city || [], (v) => v === state.city,
    (v) => { state.city = state.city === v ? "" : v; state.page = 1; syncControls(); runSearch(true); }, "City");
  const tags = tagFilters();
  facetList($("#facet-hashtags"), facets.fields.hashtags || [], (v) => tags.has(v), toggleTag, "Hashtag");
  loadTrend();
}

async function loadTrend() {
  const chart = $("#trend-chart");
  const legend = $("#trend-legend");
  $("#trend-chart").closest(".trend").hidden = !semantic();
  if (!semantic()) return;
  if (state.photo || !state.q) {
    chart.replaceChildren(el("p", { class: "muted", text: "The trend follows a typed query, not a photo." }));
    legend.replaceChildren();
    return;
  }
  const id = ++trendRequest;
  const params = new URLSearchParams({ q: state.q, by: "city", interval: "month" });
  if (state.city) params.set("city", state.city);
  if (state.minScore !== "") params.set("min_score", state.minScore);
  let body;
  try {
    const response = await fetch(`/trends?${params}`);
    body = await response.json();
    if (!response.ok) throw new Error(body.message || response.statusText);
  } catch (err) {
    if (id === trendRequest) chart.replaceChildren(el("p", { class: "muted", text: `No trend (${err.message}).` }));
    return;
  }
  if (id !== trendRequest) return;
  drawTrend(chart, legend, body.series.slice(0, TREND_COLOURS.length));
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function drawTrend(chart, legend, series) {
  const periods = [...new Set(series.flatMap((s) => s.points.map((p) => p.period)))].sort();
  if (!periods.length) {
    chart.replaceChildren(el("p", { class: "muted", text: "No dated posts among the matches." }));
    legend.replaceChildren();
    return;
  }
  const W = 240, H = 110, PAD = 6;
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.count)));
  const x = (period) => PAD + (periods.length === 1 ? (W - 2 * PAD) / 2
    : periods.indexOf(period) * (W - 2 * PAD) / (periods.length - 1));
  const y = (count) => H - PAD - count * (H - 2 * PAD) / max;
  const summary = series.map((s) => `${s.key}: ${s.points.map((p) => `${p.period} ${p.count}`).join(", ")}`).join("; ");
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Matching posts per month by city. ${summary}`,
    class: "trend-svg", preserveAspectRatio: "none" },
    svg("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis" }));
  series.forEach((s, i) => {
    const colour = TREND_COLOURS[i];
    // Every period of the chart, zero where this city had no match (its posts exist, none matched).
    const byPeriod = new Map(s.points.map((p) => [p.period, p]));
    const points = periods.map((period) => [period, byPeriod.get(period)]);
    plot.append(svg("polyline", { fill: "none", stroke: colour, "stroke-width": 2, "vector-effect": "non-scaling-stroke",
      points: points.map(([period, p]) => `${x(period)},${y(p ? p.count : 0)}`).join(" "), "data-city": s.key }));
    for (const [period, p] of points) {
      if (!p || !p.count) continue;
      plot.append(svg("circle", { cx: x(period), cy: y(p.count), r: 2.5, fill: colour },
        svg("title", {}, `${s.key}, ${period}: ${p.count} of ${p.total} posts (${Math.round(p.share * 100)} %)`)));
    }
  });
  chart.replaceChildren(plot, el("div", { class: "trend-axis" },
    el("span", { text: periods[0] }), el("span", { text: `max ${max}` }), el("span", { text: periods[periods.length - 1] })));
  legend.replaceChildren(...series.map((s, i) => el("li", {},
    el("span", { class: "swatch", style: `background:${TREND_COLOURS[i]}`, "aria-hidden": "true" }),
    el("span", { text: `${s.key} (${s.count})` }))));
}
// ---- /facets17 ------------------------------------------------------------------------------

// ---- wiring ---------------------------------------------------------------------------------
async function loadCities() {
  try {
    const response = await fetch("/cities");
    const body = await response.json();
    const select = $("#city");
    for (const { city, count } of body.cities || []) {
      const text = `${city} (${count})`;
      // The URL's city may already have its option (added before the list came): give it the count.
      const known = [...select.options].find((o) => o.value === city);
      if (known) known.textContent = text;
      else select.append(el("option", { value: city, text }));
    }
    select.value = state.city;
  } catch { /* the filter stays usable through the query: city:paris */ }
}

// The help's `[img:ID]+park` example names a post of this index (the best match for "beach"): a
// fixed id would be refused on most indexes. It stays hidden while none is known (an empty index).
async function loadImageExample() {
  try {
    const response = await fetch("/search?q=beach&k=1&collapse=false");
    const body = await response.json();
    const id = response.ok && body.hits && body.hits.length ? body.hits[0].id : null;
    if (!id) return;
    const q = `[img:${id}]+park`;
    const link = $("#image-example a");
    link.textContent = q;
    link.href = `?${new URLSearchParams({ q })}`;
    $("#image-example").hidden = false;
  } catch { /* no example: the others stay */ }
}

function init() {
  readUrl();
  syncControls();
  loadCities();
  loadImageExample();

  // "Skip to results" (the first Tab stop): to the first result, past the ~40 stops of the header
  // and the controls; without results, to the (empty) list itself.
  $("#skip-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    const first = $("#grid .card");
    (first || $("#grid")).focus();
    (first || $("#grid")).scrollIntoView({ block: "nearest" });
  });
  $("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); setQuery($("#q").value, true); });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { state.mode = radio.value; state.page = 1; syncSort(); runSearch(true); });
  }
  $("#city").addEventListener("change", (ev) => { state.city = ev.target.value; state.page = 1; runSearch(true); });
  $("#sort").addEventListener("change", (ev) => { state.sort = ev.target.value; state.page = 1; runSearch(true); });
  $("#min-score").addEventListener("change", (ev) => {
    state.minScore = minScoreOf(ev.target.value);
    ev.target.value = state.minScore;
    state.page = 1;
    runSearch(true);
  });
  $("#more").addEventListener("click", () => { state.page += 1; runSearch(false, true); });
  $("#click-sign").addEventListener("click", (ev) => {
    const pressed = ev.currentTarget.getAttribute("aria-pressed") !== "true";
    ev.currentTarget.setAttribute("aria-pressed", String(pressed));
    ev.currentTarget.textContent = pressed ? "−" : "+";
  });
  for (const link of document.querySelectorAll("#query-help a")) {
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      setQuery(new URL(link.href).searchParams.get("q") || "", true);
    });
  }
  $("#detail-add").addEventListener("click", () => { $("#detail").close(); state.refocusId = detailHit.id; addTerm(`[img:${detailHit.id}]`, 1, clickWeight()); });
  $("#detail-sub").addEventListener("click", () => { $("#detail").close(); state.refocusId = detailHit.id; addTerm(`[img:${detailHit.id}]`, -1, clickWeight()); });
  $("#detail-only").addEventListener("click", () => { $("#detail").close(); state.refocusId = detailHit.id; setQuery(`[img:${detailHit.id}]`, true); });

  $("#photo-button").addEventListener("click", () => $("#photo-input").click());
  $("#photo-input").addEventListener("change", (ev) => { if (ev.target.files[0]) setPhoto(ev.target.files[0]); ev.target.value = ""; });
  let dragDepth = 0;
  window.addEventListener("dragenter", (ev) => { if ([...ev.dataTransfer.types].includes("Files")) { dragDepth++; $("#drop-overlay").hidden = false; } });
  window.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; $("#drop-overlay").hidden = true; } });
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => {
    ev.preventDefault();
    dragDepth = 0;
    $("#drop-overlay").hidden = true;
    const file = [...(ev.dataTransfer.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) setPhoto(file);
  });

  window.addEventListener("popstate", () => { readUrl(); state.page = 1; syncControls(); runSearch(false); });
  runSearch(false);
}

document.addEventListener("DOMContentLoaded", init);

// ---- alerts17: "watch this query" (saved searches with alerts) --------------------------------
// Saves the current query with POST /alerts (needs the API key, kept for this tab only) and shows
// each watched search's new matches as they arrive (GET /alerts/{id}/events, Server-Sent Events).
// The ids watched from this browser are remembered, so a reload keeps following them.
const watch = {
  storageKey: "jointspace.watched",
  sources: new Map(),   // alert id → EventSource
  ids() { try { return JSON.parse(localStorage.getItem(this.storageKey) || "[]"); } catch { return []; } },
  save(ids) { localStorage.setItem(this.storageKey, JSON.stringify([...new Set(ids)])); },
};

function watchStatus(text) { $("#watch-status").textContent = text; }

function suggestedMinScore() {
  // Nine tenths of the best hit's similarity, rounded down: "about as close as the best one now";
  // the user may change it. (Keyword scores are not similarities: keyword alerts take none.)
  const best = Math.max(...state.lastHits.map((h) => Number(h.score)).filter(Number.isFinite));
  if (!Number.isFinite(best) || best <= 0) return "0.3";
  return String(Math.min(1, Math.floor(best * 90) / 100));
}

function openWatchForm() {
  if (state.photo) { watchStatus("A search with a photo cannot be watched: remove the photo first."); return; }
  if (!state.q) { watchStatus("Type a query first, then watch it."); return; }
  const form = $("#watch-form");
  $("#watch-query").textContent = `${state.q}${state.city ? ` · ${state.city}` : ""} · ${state.mode}`;
  const needsScore = state.mode !== "keyword";
  $("#watch-min-label").hidden = !needsScore;
  $("#watch-min-score").required = needsScore;
  $("#watch-min-score").value = suggestedMinScore();
  $("#watch-key").value = sessionStorage.getItem("jointspace.apiKey") || "";
  form.hidden = false;
  (needsScore ? $("#watch-min-score") : $("#watch-key")).focus();
}

async function saveWatch(ev) {
  ev.preventDefault();
  const key = $("#watch-key").value.trim();
  const body = { q: state.q, mode: state.mode, city: state.city ? [state.city] : [] };
  if (state.mode !== "keyword") body.min_score = Number($("#watch-min-score").value);
  let response;
  try {
    response = await fetch("/alerts", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-API-Key": key } });
  } catch (err) { watchStatus(`The server cannot be reached (${err.message}).`); return; }
  const answer = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) { watchStatus(answer.message || "The search could not be saved."); return; }
  sessionStorage.setItem("jointspace.apiKey", key);
  $("#watch-form").hidden = true;
  watch.save([...watch.ids(), answer.id]);
  showWatched(answer);
  watchStatus(`Watching “${answer.name}”: new matching posts will show below.`);
}

function showWatched(alert) {
  if (document.getElementById(`watch-${alert.id}`)) return;
  const matches = el("ul", { class: "watch-matches", "aria-label": `New matches of ${alert.name}` });
  const item = el("li", { class: "watch-item", id: `watch-${alert.id}`, "data-alert": alert.id },
    el("header", {},
      el("strong", { text: alert.name }),
      el("button", { type: "button", class: "ghost", text: "Stop", "aria-label": `Stop watching ${alert.name}`,
        onclick: () => stopWatching(alert) })),
    matches);
  $("#watch-list").prepend(item);
  const source = new EventSource(`/alerts/${encodeURIComponent(alert.id)}/events`);
  source.addEventListener("match", (ev) => {
    const match = JSON.parse(ev.data);
    if (matches.querySelector(`[data-id="${CSS.escape(match.id)}"]`)) return;
    const caption = match.caption || (match.hashtags || []).map((t) => `#${t}`).join(" ") || "(no caption)";
    matches.prepend(el("li", { class: "watch-match", "data-id": match.id },
      el("img", { src: match.thumbnail_url, alt: "" }),
      el("span", { text: caption }),
      el("span", { class: "score", title: "score", text: Number(match.score).toFixed(3) })));
    watchStatus(`New match for “${alert.name}”: ${caption}`);
  });
  source.addEventListener("removed", () => { source.close(); item.remove(); });
  watch.sources.set(alert.id, source);
}

async function stopWatching(alert) {
  const source = watch.sources.get(alert.id);
  if (source) source.close();
  watch.sources.delete(alert.id);
  watch.save(watch.ids().filter((id) => id !== alert.id));
  const item = document.getElementById(`watch-${alert.id}`);
  if (item) item.remove();
  const key = sessionStorage.getItem("jointspace.apiKey");
  if (key) {  // with the key, the saved search is removed on the server too
    await fetch(`/alerts/${encodeURIComponent(alert.id)}`, { method: "DELETE", headers: { "X-API-Key": key } })
      .catch(() => {});
  }
  watchStatus(`Stopped watching “${alert.name}”.`);
}

async function resumeWatching() {
  const ids = watch.ids();
  if (!ids.length) return;
  try {
    const body = await (await fetch("/alerts")).json();
    const known = new Map((body.alerts || []).map((a) => [a.id, a]));
    watch.save(ids.filter((id) => known.has(id)));
    for (const id of ids) if (known.has(id)) showWatched(known.get(id));
  } catch { /* the panel stays empty; saving again works */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#watch-button").addEventListener("click", openWatchForm);
  $("#watch-form").addEventListener("submit", saveWatch);
  $("#watch-cancel").addEventListener("click", () => { $("#watch-form").hidden = true; });
  resumeWatching();
});
// ---- /alerts17 ---------------------------------------------------------------------------------
