// synth report's example browser. Plain JavaScript, no libraries, no network. Every text from the run is put into
// the page with textContent (never as HTML), so a record holding markup shows as text.
(() => {
  "use strict";
  const D = JSON.parse(document.getElementById("browser-data").textContent);
  const L = D.lookups;
  const PAGE = 50;
  const ANY = "";
  const positions = (names) => Object.fromEntries(names.map((name, i) => [name, i]));
  const R = positions(D.record_fields);
  const J = positions(D.rejected_fields);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function block(label, text, className) {
    const part = el("div", "field");
    part.append(el("h4", null, label), el("pre", className || "text", text));
    return part;
  }

  function choices(values) {
    return [[ANY, "any"]].concat(values.map((v) => [v, v]));
  }

  const scoreChoices = (rows, at) => {
    const seen = [...new Set(rows.map((r) => r[at]).filter((s) => s !== null))].sort((a, b) => a - b);
    return [[ANY, "any"], ["unscored", "unscored"]].concat(seen.map((s) => [String(s), String(s)]));
  };
  const byScore = (at) => (r, v) => (v === "unscored" ? r[at] === null : r[at] === Number(v));
  const byLookup = (at, list) => (r, v) => list[r[at]] === v;

  function textTest(fields) {
    return (r, v) => {
      if (!r.lower) r.lower = fields.map((f) => r[f] || "").join("\n").toLowerCase();
      return r.lower.includes(v.toLowerCase());
    };
  }

  const views = {
    records: {
      rows: D.records,
      filters: [
        { key: "kind", label: "task kind", options: choices(L.kind), test: byLookup(R.kind, L.kind) },
        { key: "system", label: "system message", options: choices(L.system), test: byLookup(R.system, L.system) },
        { key: "method", label: "method", options: choices(L.method), test: byLookup(R.method, L.method),
          hide: L.method.length < 2 },
        { key: "persona", label: "persona", options: choices(L.persona), test: byLookup(R.persona, L.persona),
          hide: L.persona.length === 0 },
        { key: "quality", label: "judge quality", options: scoreChoices(D.records, R.quality), test: byScore(R.quality),
          hide: !D.records.some((r) => r[R.quality] !== null) },
        { key: "complexity", label: "judge complexity", options: scoreChoices(D.records, R.complexity),
          test: byScore(R.complexity), hide: !D.records.some((r) => r[R.complexity] !== null) },
        { key: "signal", label: "signal",
          options: [[ANY, "any"], ["none", "no signal"], ["some", "any signal"]].concat(L.signal.map((s) => [s, s])),
          test: (r, v) => (v === "none" ? r[R.signals].length === 0 : v === "some" ? r[R.signals].length > 0
            : r[R.signals].some((s) => L.signal[s[0]] === v)) },
        { key: "q", label: "text", text: true, test: textTest([R.instruction, R.input, R.response]) },
      ],
      title: (r) => r[R.instruction],
      show: showRecord,
    },
    rejected: {
      rows: D.rejected,
      filters: [
        { key: "outcome", label: "outcome", options: choices(L.outcome), test: byLookup(J.outcome, L.outcome) },
        { key: "stage", label: "stage", options: choices(L.stage), test: byLookup(J.stage, L.stage) },
        { key: "reason", label: "reason", options: choices(L.reason), test: byLookup(J.reason, L.reason) },
        { key: "rq", label: "text", text: true, test: textTest([J.text, J.detail]) },
      ],
      title: (r) => `${L.reason[r[J.reason]]}: ${r[J.text] || r[J.detail] || r[J.id] || ""}`,
      show: showRejected,
    },
  };

  const state = { tab: "records", values: {}, position: 0, matches: [] };

  function facts(pairs) {
    const list = el("dl", "facts");
    for (const [name, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      list.append(el("dt", null, name), el("dd", null, value));
    }
    return list;
  }

  function showRecord(r) {
    const parts = [facts([
      ["record", r[R.id]], ["task kind", L.kind[r[R.kind]]], ["system message", L.system[r[R.system]]],
      ["method", L.method[r[R.method]]], ["persona", r[R.persona] === null ? null : L.persona[r[R.persona]]],
      ["teacher", L.teacher[r[R.teacher]]],
      ["judge quality", r[R.quality] === null ? null : `${r[R.quality]} of 5: ${r[R.quality_reason]}`],
      ["judge complexity", r[R.complexity] === null ? null : `${r[R.complexity]} of 6: ${r[R.complexity_reason]}`],
      ["lineage", r[R.lineage]],
    ])];
    if (r[R.signals].length) {
      const list = el("ul", "signals");
      for (const [name, detail] of r[R.signals]) list.append(el("li", null, `${L.signal[name]}: ${detail}`));
      const part = el("div", "field");
      part.append(el("h4", null, "free quality signals"), list);
      parts.push(part);
    }
    if (r[R.persona] !== null && D.persona_text[r[R.persona]]) parts.push(block("persona", D.persona_text[r[R.persona]]));
    if (r[R.parent]) parts.push(block(`parent task ${r[R.parent]}`, D.pool[r[R.parent]] || "(its text is not in the run)"));
    parts.push(block("instruction", r[R.instruction]));
    if (r[R.input]) parts.push(block("input", r[R.input]));
    parts.push(block("system message", D.system_text[r[R.system]] || ""));
    parts.push(block("response", r[R.response], "text response"));
    if (r[R.reference]) parts.push(block("reference output", r[R.reference]));
    const strong = r[R.strong];
    if (strong) parts.push(block(`first answer, by ${strong[0]} (a strong teacher re-answered: ${strong[1]})`, strong[2]));
    return parts;
  }

  function showRejected(r) {
    const score = r[J.score];
    const stage = L.stage[r[J.stage]];
    const scoreText = score === null ? null
      : stage === "novelty" ? `cosine ${score} to its nearest pool task (threshold ${D.threshold})` : String(score);
    const parts = [facts([
      ["outcome", L.outcome[r[J.outcome]]], ["stage", stage], ["reason", L.reason[r[J.reason]]],
      ["score", scoreText], ["mutation", r[J.mutation]], ["id", r[J.id]],
    ])];
    const pair = el("div", "pair");
    pair.append(block("candidate", r[J.text] || "(no text kept)"));
    const other = r[J.neighbour] || r[J.parent];
    if (other) {
      const label = r[J.neighbour] ? `the pool task it repeats: ${other}` : `its parent task: ${other}`;
      pair.append(block(label, D.pool[other] || "(its text is in neither tasks.jsonl nor the seeds)"));
    }
    parts.push(pair);
    if (r[J.detail]) parts.push(block("detail", r[J.detail]));
    return parts;
  }

  function buildFilters() {
    const box = document.getElementById("filters");
    box.replaceChildren();
    for (const f of views[state.tab].filters) {
      if (f.hide) continue;
      const label = el("label", null, `${f.label} `);
      let input;
      if (f.text) {
        input = el("input");
        input.type = "search";
        input.addEventListener("input", () => { state.values[f.key] = input.value; refilter(); });
      } else {
        input = el("select");
        for (const [value, text] of f.options) {
          const option = el("option", null, text);
          option.value = value;
          input.append(option);
        }
        input.addEventListener("change", () => { state.values[f.key] = input.value; refilter(); });
      }
      input.id = `f-${f.key}`;
      input.value = state.values[f.key] || ANY;
      if (input.value !== (state.values[f.key] || ANY)) state.values[f.key] = ANY;   // a value the data lacks
      label.append(input);
      box.append(label);
    }
  }

  function refilter(keepPosition) {
    const view = views[state.tab];
    const active = view.filters.filter((f) => !f.hide && state.values[f.key]);
    state.matches = [];
    view.rows.forEach((r, i) => {
      if (active.every((f) => f.test(r, state.values[f.key]))) state.matches.push(i);
    });
    if (!keepPosition) state.position = 0;
    state.position = Math.max(0, Math.min(state.position, state.matches.length - 1));
    render();
  }

  function render() {
    const view = views[state.tab];
    const total = view.rows.length;
    const count = state.matches.length;
    document.getElementById("position").textContent = count
      ? `${state.position + 1} of ${count} matching (${total} in the browser)` : `none of ${total} match`;
    document.getElementById("prev").disabled = state.position <= 0;
    document.getElementById("next").disabled = state.position >= count - 1;
    const detail = document.getElementById("detail");
    detail.replaceChildren(...(count ? view.show(view.rows[state.matches[state.position]]) : []));
    const list = document.getElementById("list");
    const start = Math.floor(state.position / PAGE) * PAGE;
    list.start = start + 1;
    list.replaceChildren(...state.matches.slice(start, start + PAGE).map((row, k) => {
      const item = el("li", start + k === state.position ? "current" : null, view.title(view.rows[row]).slice(0, 140));
      item.addEventListener("click", () => { state.position = start + k; render(); });
      return item;
    }));
    for (const button of document.querySelectorAll(".tabs button")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === state.tab));
      button.textContent = `${button.dataset.tab === "records" ? "Records" : "Rejected candidates"} (${views[button.dataset.tab].rows.length})`;
    }
    saveHash();
  }

  function saveHash() {
    const params = new URLSearchParams();
    if (state.tab !== "records") params.set("tab", state.tab);
    for (const [key, value] of Object.entries(state.values)) if (value) params.set(key, value);
    if (state.position) params.set("at", String(state.position + 1));
    try { history.replaceState(null, "", params.toString() ? `#${params}` : location.pathname); } catch (e) { /* a file:// page that may not */ }
  }

  function loadHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const keys = new Set(["tab", "at"].concat(Object.values(views).flatMap((v) => v.filters.map((f) => f.key))));
    if (![...params.keys()].some((k) => keys.has(k))) return false;
    if (views[params.get("tab")]) state.tab = params.get("tab");
    for (const [key, value] of params) if (key !== "tab" && key !== "at") state.values[key] = value;
    state.position = Math.max(0, Number(params.get("at") || 1) - 1);
    return true;
  }

  function step(by) {
    const next = state.position + by;
    if (next >= 0 && next < state.matches.length) { state.position = next; render(); }
  }

  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, select, textarea")) return;
    if (event.key === "ArrowLeft") step(-1);
    if (event.key === "ArrowRight") step(1);
  });
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => { state.tab = button.dataset.tab; state.values = {}; buildFilters(); refilter(); });
  }
  const fromAddress = loadHash();
  buildFilters();
  refilter(true);
  if (fromAddress) document.getElementById("examples").scrollIntoView();
})();
