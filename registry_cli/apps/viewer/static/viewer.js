// nearai view: the only script a page runs. A running suite's page asks for its progress every second and shows
// it; when the run is over the page is loaded again once, with its summary.
"use strict";
(function () {
  const box = document.getElementById("progress");
  if (!box || !box.dataset.poll) return;
  const final = ["completed", "failed", "cancelled"];
  if (final.includes(box.dataset.status)) return;
  function show(state) {
    document.getElementById("run-status").textContent = state.status;
    document.getElementById("run-status").className = "status " + state.status;
    document.getElementById("run-done").textContent = state.done;
    document.getElementById("run-total").textContent = state.total;
    const bar = document.getElementById("run-bar");
    bar.max = Math.max(1, state.total);
    bar.value = state.done;
    for (const c of state.cells) {
      const row = box.querySelector('tr[data-cell="' + c.index + '"]');
      if (!row) continue;
      for (const name of ["status", "done", "total", "passed", "errors", "cached"]) {
        const cell = row.querySelector('[data-field="' + name + '"]');
        if (cell) cell.textContent = c[name];
      }
      row.querySelector('[data-field="status"]').className = "status " + c.status;
      const progress = row.querySelector('[data-field="bar"]');
      progress.max = Math.max(1, c.total);
      progress.value = c.done;
    }
    box.dataset.status = state.status;
    box.dataset.polls = String(Number(box.dataset.polls || 0) + 1);
  }
  async function poll() {
    const stop = new AbortController();
    const late = window.setTimeout(() => stop.abort(), 4000);  // a request left unanswered is asked again
    try {
      const answer = await fetch(box.dataset.poll, { cache: "no-store", signal: stop.signal });
      if (answer.ok) {
        const state = await answer.json();
        show(state);
        if (final.includes(state.status)) { window.location.reload(); return; }
      }
    } catch (e) { console.warn("progress: " + e); /* the viewer restarting, or the request lost: ask again */ }
    window.clearTimeout(late);
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 1000);
})();
