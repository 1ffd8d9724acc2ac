// Search boxes over long checkbox lists (topics, creators): typing hides the entries whose
// name does not contain the text. Checked entries stay visible, so a choice is never hidden.

for (const input of document.querySelectorAll("[data-filter-list]")) {
  const list = document.querySelector(input.dataset.filterList);
  if (!list) continue;
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    for (const item of list.querySelectorAll("[data-filter-item]")) {
      const checked = item.querySelector("input")?.checked;
      item.hidden = Boolean(needle) && !checked && !item.dataset.filterItem.includes(needle);
    }
  });
}
