// Demonstrations on the ranking page: choosing a candidate to edit (or pressing "e", which
// picks the one ranked first) fills the answer box with its text. The plain form works without
// it: the select and the textarea are posted as they are.
(() => {
  "use strict";
  const form = document.getElementById("rank-form");
  const select = document.getElementById("id_edited_from");
  const box = document.getElementById("id_demonstration");
  if (!form || !select || !box) return;
  const source = (id) => form.querySelector(`textarea[data-source-for="${id}"]`);
  let filled = box.value;  // what we put there: replaced freely, the annotator's own text never

  function startFrom(id) {
    select.value = id;
    if (box.value !== filled && box.value.trim()) return;
    const original = id ? source(id) : null;
    box.value = filled = original ? original.value : "";
  }

  function best() {
    // The first rank chosen (annotate.js keeps the selects in step with the keyboard).
    const ranked = [...form.querySelectorAll("select[name^='rank-']")]
      .filter((s) => s.value)
      .sort((a, b) => Number(a.value) - Number(b.value));
    return ranked.length ? ranked[0].name.slice("rank-".length) : "";
  }

  select.addEventListener("change", () => startFrom(select.value));
  const button = form.querySelector("[data-action='edit-best']");
  if (button) button.addEventListener("click", () => { startFrom(best()); box.focus(); });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("textarea, input, select") || event.ctrlKey || event.metaKey) return;
    if (event.key === "e" && best()) {
      event.preventDefault();
      startFrom(best());
      box.focus();
    }
  });
})();
