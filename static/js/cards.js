// Result cards: "Context" opens the paragraph around a sentence (fetched once, the sentence
// marked), and a work's title opens the work in a dialog over the page. The dialog traps
// focus while open (a modal <dialog>) and gives it back to the link that opened it; without
// this module both are plain links and pages.

const dialog = document.getElementById("work-dialog");

async function fragment(url) {
  const response = await fetch(url, { headers: { "HX-Request": "true" } });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.text();
}

async function toggleContext(button) {
  const region = document.getElementById(button.getAttribute("aria-controls"));
  const open = button.getAttribute("aria-expanded") === "true";
  if (open) {
    region.hidden = true;
    button.setAttribute("aria-expanded", "false");
    return;
  }
  if (!region.dataset.loaded) {
    region.textContent = "Loading the paragraph…";
    region.hidden = false;
    try {
      region.innerHTML = await fragment(button.dataset.context);
      region.dataset.loaded = "true";
    } catch {
      region.textContent = "The paragraph could not be loaded; try again.";
    }
  }
  region.hidden = false;
  button.setAttribute("aria-expanded", "true");
}

let opener = null;

async function openWork(link) {
  if (!dialog) return false;
  const body = dialog.querySelector("[data-dialog-body]");
  body.textContent = "Loading the work…";
  opener = link;
  dialog.showModal();
  try {
    body.innerHTML = await fragment(link.href);
    const title = body.querySelector("[data-work-title]");
    dialog.querySelector("#work-dialog-title").textContent = title ? title.textContent : "Work";
    window.dispatchEvent(new CustomEvent("artefact:fragment", { detail: body }));
  } catch {
    body.textContent = "The work could not be loaded; open its page instead.";
  }
  return true;
}

document.addEventListener("click", (event) => {
  const context = event.target.closest("[data-context]");
  if (context) {
    toggleContext(context);
    return;
  }
  const work = event.target.closest("[data-work-panel]");
  if (work && dialog && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
    event.preventDefault();
    openWork(work);
    return;
  }
  if (event.target.closest("[data-dialog-close]")) dialog?.close();
});

dialog?.addEventListener("close", () => {
  opener?.focus();
  opener = null;
});
