// Grad-ECLIP heat maps on the image stage: "Show heatmap" on a card (or "Heatmaps for the
// top 5") asks the API for the maps (one worker pass for all of them), waits for them, and
// lays the overlay over the painting at display size with an opacity slider, a colour
// legend and a caption naming the sentence. The shown map is kept in the URL (?heatmap=).

const stage = document.querySelector("[data-stage]");
const controls = document.querySelector("[data-heatmap-controls]");
const DISPLAY_SIDE = 1600;
const WAIT_SECONDS = 120;

function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.split("=")[1]);
  try {
    return JSON.parse(document.body.getAttribute("hx-headers:inherited"))["X-CSRFToken"];
  } catch {
    return "";
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function setUp() {
  const api = stage.dataset.api;
  const page = stage.dataset.page;
  const layer = stage.querySelector("[data-heatmap-layer]");
  const caption = controls.querySelector("[data-heatmap-caption]");
  const opacity = controls.querySelector("[data-heatmap-opacity]");
  const ready = new Set();
  let shown = null;

  function buttons(sentenceId) {
    return document.querySelectorAll(`[data-heatmap="${CSS.escape(sentenceId)}"]`);
  }

  function sentenceText(sentenceId) {
    const card = document.getElementById(`hit-${sentenceId}-text`);
    return card ? card.textContent.trim() : sentenceId;
  }

  function setUrl(sentenceId) {
    const url = new URL(window.location.href);
    if (sentenceId) url.searchParams.set("heatmap", sentenceId);
    else url.searchParams.delete("heatmap");
    window.history.replaceState(null, "", url);
  }

  function say(message) {
    controls.hidden = false;
    caption.textContent = message;
  }

  async function request(sentenceIds) {
    const missing = sentenceIds.filter((id) => !ready.has(id));
    if (!missing.length) return;
    const response = await fetch(`${api}/heatmaps`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ sentence_ids: missing }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || "The heatmap could not be requested.");
    }
  }

  async function waitFor(sentenceId) {
    const deadline = Date.now() + WAIT_SECONDS * 1000;
    while (Date.now() < deadline) {
      const response = await fetch(`${page}heatmaps/${encodeURIComponent(sentenceId)}`);
      if (!response.ok) throw new Error("The heatmap could not be computed.");
      if ((await response.json()).ready) {
        ready.add(sentenceId);
        return;
      }
      await sleep(500);
    }
    throw new Error("The heatmap is taking too long: the model workers may be busy. Try again later.");
  }

  function hide() {
    if (shown) for (const button of buttons(shown)) {
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Show heatmap";
    }
    shown = null;
    layer.hidden = true;
    layer.removeAttribute("src");
    controls.hidden = true;
    setUrl(null);
  }

  async function show(sentenceId, batch = [sentenceId]) {
    if (shown && shown !== sentenceId) hide();
    for (const button of buttons(sentenceId)) {
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Hide heatmap";
    }
    shown = sentenceId;
    setUrl(sentenceId);
    say(`Computing the heatmap for “${sentenceText(sentenceId)}”…`);
    try {
      await request(batch);
      await waitFor(sentenceId);
    } catch (error) {
      if (shown === sentenceId) say(error.message);
      return;
    }
    if (shown !== sentenceId) return;
    layer.src = `${api}/heatmaps/${encodeURIComponent(sentenceId)}.png?max_side=${DISPLAY_SIDE}`;
    layer.style.opacity = String(Number(opacity.value) / 100);
    layer.hidden = false;
    say(`Heatmap for “${sentenceText(sentenceId)}”: where the painting supports this sentence.`);
  }

  opacity.addEventListener("input", () => {
    layer.style.opacity = String(Number(opacity.value) / 100);
  });
  controls.querySelector("[data-heatmap-hide]").addEventListener("click", hide);

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-heatmap]");
    if (button) {
      const id = button.dataset.heatmap;
      if (shown === id) hide();
      else show(id);
      return;
    }
    const top = event.target.closest("[data-heatmap-top]");
    if (top) {
      const ids = [...document.querySelectorAll("[data-heatmap]")]
        .map((b) => b.dataset.heatmap)
        .filter((id, index, all) => all.indexOf(id) === index)
        .slice(0, Number(top.dataset.heatmapTop));
      if (ids.length) show(ids[0], ids);
    }
  });

  const initial = new URL(window.location.href).searchParams.get("heatmap");
  if (initial && buttons(initial).length) show(initial);
}

if (stage && controls) setUp();
