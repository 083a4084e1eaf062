// Live job page: poll the job's status JSON, move the bar, redraw the loss curve, show the log.
(() => {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const url = root.dataset.statusUrl;
  const svg = document.getElementById("chart");
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const fmt = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(2) : +v.toPrecision(3)).toString();

  function draw(history) {
    const key = history.some((h) => "loss" in h) ? "loss"
      : Object.keys(history[0] || {}).find((k) => k !== "step" && k !== "epoch");
    svg.replaceChildren();
    const points = history.filter((h) => key && Number.isFinite(h[key])).map((h) => [h.step, h[key]]);
    if (points.length < 1) {
      svg.append(el("text", { x: 300, y: 110, "text-anchor": "middle", class: "muted" }, "No metrics yet"));
      return;
    }
    const [W, H, L, B] = [600, 220, 64, 24];
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys, Math.min(...ys) + 1e-9)];
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - 8);
    const sy = (y) => 8 + (1 - (y - y0) / (y1 - y0)) * (H - B - 8);
    svg.append(el("line", { x1: L, y1: H - B, x2: W - 8, y2: H - B, class: "axis" }));
    svg.append(el("line", { x1: L, y1: 8, x2: L, y2: H - B, class: "axis" }));
    svg.append(el("text", { x: L - 4, y: 14, "text-anchor": "end", class: "tick" }, fmt(y1)));
    svg.append(el("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "tick" }, fmt(y0)));
    svg.append(el("text", { x: W - 8, y: H - 6, "text-anchor": "end", class: "tick" }, `step ${x1}`));
    svg.append(el("text", { x: L, y: H - 6, class: "tick" }, key));
    svg.append(el("polyline", { points: points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), class: "line" }));
    const last = history[history.length - 1];
    field("latest").textContent = Object.entries(last)
      .filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${+v.toPrecision(4)}`).join(" · ");
  }

  function show(s) {
    const pct = Math.round(s.progress * 100);
    root.querySelector(".fill").style.width = `${pct}%`;
    root.querySelector(".pct").textContent = `${pct}%`;
    root.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
    const status = root.querySelector("[data-testid=job-status]");
    status.textContent = s.status;
    status.className = `status status-${s.status}`;
    field("note").textContent = s.progress_note + (s.cancel_requested && !s.finished ? " (cancelling…)" : "");
    field("eta").textContent = s.eta ? `(${s.eta})` : "";
    field("log").textContent = s.log_tail;
    field("outputs").textContent = JSON.stringify(s.outputs, null, 2);
    const err = field("error");
    err.hidden = !s.error;
    err.textContent = s.error;
    draw(s.metric_history);
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const s = await response.json();
        show(s);
        if (s.finished) {
          // Buttons (cancel / retry) depend on the final state: reload once to get them right.
          if (root.querySelector("[data-testid=cancel]") || (s.status !== "succeeded" && !root.querySelector("[data-testid=retry]"))) {
            window.location.reload();
          }
          return;
        }
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(poll, 1000);
  }

  show(JSON.parse(document.getElementById("job-initial").textContent));
  poll();
})();
