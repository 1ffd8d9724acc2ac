/**
 * Copy-to-clipboard buttons, for any page that loads this module:
 *
 *   <input id="new-key" value="…" readonly>
 *   <button type="button" data-copy-target="#new-key" data-copy-status="#new-key-status">Copy</button>
 *   <p id="new-key-status" role="status"></p>
 *
 * A click copies the target's value (or its text) and says so in the status element, a live
 * region, so that screen-reader users hear it too. Where the browser refuses the clipboard,
 * the text is selected instead and the status says how to copy it by hand. Listening on the
 * document also covers buttons that htmx swaps in later.
 *
 * The buttons stay hidden (artefact.css) until this module has run and marked the document,
 * so that no click lands before the listener exists and no reader without scripts sees a
 * button that does nothing.
 */

import { announce } from "./announce.js";

function textOf(target) {
  return "value" in target ? target.value : target.textContent.trim();
}

async function copyFrom(button) {
  const target = document.querySelector(button.dataset.copyTarget);
  const status = document.querySelector(button.dataset.copyStatus);
  if (!target) return;
  try {
    await navigator.clipboard.writeText(textOf(target));
    announce(status, "Copied to the clipboard.");
  } catch {
    if (typeof target.select === "function") target.select();
    announce(status, "Your browser did not allow copying: the text is selected, press Ctrl+C (⌘C on a Mac) to copy it.");
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (button) copyFrom(button);
});
document.documentElement.dataset.copyReady = "";
