// Live pages (loop, models, rounds, quality): like the job page, poll while jobs run, but for
// whole regions: fetch the page again and swap each [data-live-region] whose content changed.
// Every 2 s while the page's project has queued or running jobs, every 15 s otherwise.
// A region holding the focused element is left alone (nothing typed is lost), and <details>
// keep the open state the reader gave them.
(() => {
  "use strict";
  const root = document.querySelector("[data-live]");
  if (!root) return;
  const FAST = 2000, SLOW = 15000;

  const key = (el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((i) => i.remove());
    copy.querySelectorAll("details").forEach((d) => d.removeAttribute("open"));
    return copy.innerHTML;
  };

  function swap(fresh) {
    document.querySelectorAll("[data-live-region]").forEach((old) => {
      const name = old.dataset.liveRegion;
      const next = fresh.querySelector(`[data-live-region="${name}"]`);
      if (!next || old.contains(document.activeElement) || key(old) === key(next)) return;
      const open = new Set([...old.querySelectorAll("details[open][data-testid]")].map((d) => d.dataset.testid));
      next.querySelectorAll("details[data-testid]").forEach((d) => { if (open.has(d.dataset.testid)) d.open = true; });
      old.replaceWith(document.importNode(next, true));
    });
  }

  let active = Number(root.dataset.liveActive || 0);
  async function poll() {
    if (!document.hidden) {
      try {
        const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
        if (response.ok) {
          const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
          swap(fresh);
          const freshRoot = fresh.querySelector("[data-live]");
          active = Number(freshRoot ? freshRoot.dataset.liveActive || 0 : 0);
          root.dataset.liveActive = String(active);
        }
      } catch (e) { /* network blip: try again */ }
    }
    setTimeout(poll, active ? FAST : SLOW);
  }
  setTimeout(poll, active ? FAST : SLOW);
})();
