// Keyboard-first ranking, and touch: a tap on a card gives it the next rank, with visible Tie and
// Undo buttons. Upgrades the plain form: it only ever sets the rank-<id> selects, so the server
// reads one format whether JavaScript ran or not.
(() => {
  "use strict";
  const form = document.getElementById("rank-form");
  if (!form) return;
  const k = Number(form.dataset.k);
  const cards = [...form.querySelectorAll(".candidate")];
  const byPos = new Map(cards.map((c) => [Number(c.dataset.position), c]));
  const panel = form.querySelector(".ranking");
  const help = document.getElementById("help");
  let groups = [];      // [[position, ...], ...], best first; a group of several is a tie
  let history = [];     // snapshots of `groups` for undo
  let tieNext = false;  // "=" was pressed: the next number joins the last group

  const tieButton = form.querySelector("[data-action=tie]");
  const undoButton = form.querySelector("[data-action=undo]");
  const touch = window.matchMedia("(pointer: coarse)").matches || navigator.maxTouchPoints > 0;

  document.querySelectorAll(".js-only").forEach((el) => { el.hidden = false; });
  form.classList.add("js");
  // Hints for what the device has: keys on a keyboard, taps on a touch screen.
  document.body.classList.toggle("touch", touch);

  const placed = () => new Set(groups.flat());
  const snapshot = () => history.push(JSON.stringify(groups));

  function place(pos, { tie = false } = {}) {
    if (!byPos.has(pos)) return false;
    groups = groups.map((g) => g.filter((p) => p !== pos)).filter((g) => g.length);
    if (tie && groups.length) groups[groups.length - 1].push(pos);
    else groups.push([pos]);
    return true;
  }

  function autoPlaceLast() {
    const left = [...byPos.keys()].filter((p) => !placed().has(p));
    if (left.length === 1) { snapshot(); place(left[0]); }
  }

  function render() {
    cards.forEach((card) => {
      const pos = Number(card.dataset.position);
      const gi = groups.findIndex((g) => g.includes(pos));
      const select = card.querySelector("select");
      select.value = gi >= 0 ? String(gi + 1) : "";
      const badge = card.querySelector(".rank-badge");
      badge.textContent = gi >= 0 ? `#${gi + 1}${groups[gi].length > 1 ? " (tie)" : ""}` : "";
      card.classList.toggle("ranked", gi >= 0);
    });
    panel.replaceChildren(...groups.map((g, gi) => {
      const li = document.createElement("li");
      li.dataset.group = String(gi);
      g.forEach((pos, i) => {
        if (i) li.append(" = ");
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.draggable = true;
        chip.dataset.position = String(pos);
        chip.textContent = byPos.get(pos).dataset.label;
        li.append(chip);
      });
      return li;
    }));
    panel.classList.toggle("tie-pending", tieNext);
    const full = placed().size >= k;
    tieButton.disabled = !groups.length || full;
    tieButton.setAttribute("aria-pressed", String(tieNext));
    tieButton.classList.toggle("primary", tieNext);
    undoButton.disabled = !history.length;
  }

  // One placement by key or tap: the next rank, or a tie with the last group if asked for.
  function choose(pos) {
    if (placed().has(pos)) { flash(`${byPos.get(pos).dataset.label} is already ranked; Undo takes it back.`); return; }
    snapshot();
    place(pos, { tie: tieNext });
    tieNext = false;
    autoPlaceLast();
    flash("");
  }

  function undo() {
    if (!history.length) return;
    groups = JSON.parse(history.pop());
    tieNext = false;
    render();
  }

  function flash(text) {
    let note = form.querySelector(".flash");
    if (!note) {
      note = document.createElement("p");
      note.className = "flash";
      note.setAttribute("role", "status");
      form.querySelector(".ranking-panel").append(note);
    }
    note.textContent = text;
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (help.open) {
      if (event.key === "?" || event.key === "Escape") { help.close(); event.preventDefault(); }
      return;
    }
    if (target.closest("textarea, input, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    // Enter on a focused button or link keeps its own meaning (skip, log out, ...).
    if (event.key === "Enter" && target.closest("button, a")) return;
    const key = event.key;
    if (/^[1-9]$/.test(key) && Number(key) <= k) {
      choose(Number(key));
    } else if (key === "=") {
      if (groups.length) tieNext = true;
    } else if (key === "Backspace") {
      undo();
    } else if (key === "Enter") {
      if (placed().size < k) { flash("Rank every candidate first."); event.preventDefault(); return; }
      form.requestSubmit();
    } else if (key === "s") {
      document.getElementById("skip-form").requestSubmit();
    } else if (key === "?") {
      help.showModal();
    } else {
      return;
    }
    event.preventDefault();
    render();
  });

  document.querySelector("[data-action=help]")?.addEventListener("click", () => help.showModal());

  // Taps (and clicks): a card takes the next rank; the buttons tie and undo.
  cards.forEach((card) => card.addEventListener("click", (event) => {
    if (event.target.closest("a, button, select, option, label, input, textarea, summary, kbd")) return;
    if (String(window.getSelection() || "")) return;  // selecting text to read it is no vote
    choose(Number(card.dataset.position));
    render();
  }));
  tieButton.addEventListener("click", () => {
    if (groups.length) tieNext = !tieNext;
    render();
  });
  undoButton.addEventListener("click", () => undo());

  // Drag and drop: onto the ranking to add at the end, onto a ranked group to tie with it.
  form.addEventListener("dragstart", (event) => {
    const el = event.target.closest("[data-position]");
    if (el) event.dataTransfer.setData("text/plain", el.dataset.position);
  });
  const panelBox = form.querySelector(".ranking-panel");
  panelBox.addEventListener("dragover", (event) => event.preventDefault());
  panelBox.addEventListener("drop", (event) => {
    event.preventDefault();
    const pos = Number(event.dataTransfer.getData("text/plain"));
    if (!byPos.has(pos)) return;
    const li = event.target.closest("li[data-group]");
    snapshot();
    if (li) {
      // map() keeps emptied groups until the filter, so `gi` still points at the drop target.
      const gi = Number(li.dataset.group);
      groups = groups.map((g) => g.filter((p) => p !== pos));
      groups[gi].push(pos);
      groups = groups.filter((g) => g.length);
    } else {
      place(pos);
    }
    autoPlaceLast();
    render();
  });

  // Keep a ranking made with the selects (no keyboard) visible in the panel too.
  form.addEventListener("change", (event) => {
    if (!event.target.matches("select")) return;
    const ranks = new Map();
    cards.forEach((card) => {
      const v = Number(card.querySelector("select").value);
      if (v) ranks.set(Number(card.dataset.position), v);
    });
    snapshot();
    groups = [...new Set(ranks.values())].sort((a, b) => a - b)
      .map((r) => [...ranks].filter(([, v]) => v === r).map(([p]) => p));
    render();
  });

  render();
})();
