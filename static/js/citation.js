// "Copy Chicago" / "Copy APA": fetches the work's formatted reference from the server and
// puts it on the clipboard, saying so in the button's status element (a live region).
//
// The clipboard write is handed a promise of the text (ClipboardItem), so the browser counts
// the click as the gesture even though the text arrives later; where ClipboardItem is missing
// the text is written once it has come.
//
// Like clipboard.js, it marks the document once its listener exists; until then artefact.css
// keeps the Cite menu hidden.

import { announce } from "./announce.js";

async function fetchCitation(url) {
  const response = await fetch(url, { headers: { Accept: "text/plain" } });
  if (!response.ok) throw new Error("The citation could not be made.");
  return response.text();
}

async function copyCitation(button) {
  const status = document.querySelector(button.dataset.copyStatus);
  const text = fetchCitation(button.dataset.copyCitation);
  try {
    if (window.ClipboardItem && navigator.clipboard.write) {
      const blob = text.then((value) => new Blob([value], { type: "text/plain" }));
      await navigator.clipboard.write([new ClipboardItem({ "text/plain": blob })]);
    } else {
      await navigator.clipboard.writeText(await text);
    }
    announce(status, `Copied the ${button.textContent.replace("Copy ", "")} citation to the clipboard.`);
  } catch {
    try {
      announce(status, `Your browser did not allow copying. The citation: ${await text}`);
    } catch (error) {
      announce(status, error.message);
    }
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-citation]");
  if (button) copyCitation(button);
});
document.documentElement.dataset.citationReady = "";
