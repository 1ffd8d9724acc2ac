// Grad-ECLIP heat maps on the image stage. Two kinds share one layer and one set of
// controls: a result sentence's map ("Show heatmap" on a card, or "Heatmaps for the top 5")
// and a map of any words ("Where is …?"). Each is asked of the API (one worker pass), waited
// for, and laid over the painting at display size with an opacity slider, a colour legend and
// a caption naming what it explains. The shown map is kept in the URL (?heatmap= or ?where=).

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

async function postJson(url, body, failure) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || failure);
  return answer;
}

// Polls the portal's readiness view (the API answers 404 until a map exists).
async function waitUntilReady(stateUrl) {
  const deadline = Date.now() + WAIT_SECONDS * 1000;
  while (Date.now() < deadline) {
    const response = await fetch(stateUrl);
    if (!response.ok) throw new Error("The heatmap could not be computed.");
    if ((await response.json()).ready) return;
    await sleep(500);
  }
  throw new Error("The heatmap is taking too long: the model workers may be busy. Try again later.");
}

function setUp() {
  const api = stage.dataset.api;
  const page = stage.dataset.page;
  const layer = stage.querySelector("[data-heatmap-layer]");
  const caption = controls.querySelector("[data-heatmap-caption]");
  const opacity = controls.querySelector("[data-heatmap-opacity]");
  const whereForm = document.querySelector("[data-where-form]");
  const ready = new Set();
  let shown = null; // the key of the map on the stage: "sentence:<id>" or "where:<words>"

  function buttons(sentenceId) {
    return document.querySelectorAll(`[data-heatmap="${CSS.escape(sentenceId)}"]`);
  }

  function sentenceText(sentenceId) {
    const card = document.getElementById(`hit-${sentenceId}-text`);
    return card ? card.textContent.trim() : sentenceId;
  }

  function setUrl(name, value) {
    const url = new URL(window.location.href);
    url.searchParams.delete("heatmap");
    url.searchParams.delete("where");
    if (name) url.searchParams.set(name, value);
    window.history.replaceState(null, "", url);
  }

  function say(message) {
    controls.hidden = false;
    caption.textContent = message;
  }

  function pressButtons(sentenceId, pressed) {
    for (const button of buttons(sentenceId)) {
      button.setAttribute("aria-pressed", String(pressed));
      button.textContent = pressed ? "Hide heatmap" : "Show heatmap";
    }
  }

  function hide() {
    if (shown && shown.startsWith("sentence:")) pressButtons(shown.slice(9), false);
    shown = null;
    layer.hidden = true;
    layer.removeAttribute("src");
    controls.hidden = true;
    setUrl(null);
  }

  // Shows one map: `prepare` asks for it and waits, and resolves to its PNG address.
  async function display(key, prepare, computing, explained) {
    if (shown && shown !== key) hide();
    shown = key;
    say(computing);
    let png;
    try {
      png = await prepare();
    } catch (error) {
      if (shown === key) say(error.message);
      return;
    }
    if (shown !== key) return;
    layer.src = `${png}?max_side=${DISPLAY_SIDE}`;
    layer.style.opacity = String(Number(opacity.value) / 100);
    layer.hidden = false;
    say(explained);
  }

  function showSentence(sentenceId, batch = [sentenceId]) {
    const text = sentenceText(sentenceId);
    const key = `sentence:${sentenceId}`;
    if (shown && shown !== key) hide();
    pressButtons(sentenceId, true);
    setUrl("heatmap", sentenceId);
    return display(
      key,
      async () => {
        const missing = batch.filter((id) => !ready.has(id));
        if (missing.length) {
          await postJson(`${api}/heatmaps`, { sentence_ids: missing }, "The heatmap could not be requested.");
        }
        await waitUntilReady(`${page}heatmaps/${encodeURIComponent(sentenceId)}`);
        ready.add(sentenceId);
        return `${api}/heatmaps/${encodeURIComponent(sentenceId)}.png`;
      },
      `Computing the heatmap for “${text}”…`,
      `Heatmap for “${text}”: where the painting supports this sentence.`,
    );
  }

  function showWhere(words) {
    setUrl("where", words);
    return display(
      `where:${words}`,
      async () => {
        const job = await postJson(`${api}/where`, { text: words }, "The words could not be looked for.");
        await waitUntilReady(`${page}where/${job.digest}`);
        return job.png_url;
      },
      `Looking for “${words}”…`,
      `Where is “${words}”: where the model sees these words in the painting.`,
    );
  }

  opacity.addEventListener("input", () => {
    layer.style.opacity = String(Number(opacity.value) / 100);
  });
  controls.querySelector("[data-heatmap-hide]").addEventListener("click", hide);

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-heatmap]");
    if (button) {
      const id = button.dataset.heatmap;
      if (shown === `sentence:${id}`) hide();
      else showSentence(id);
      return;
    }
    const top = event.target.closest("[data-heatmap-top]");
    if (top) {
      const ids = [...document.querySelectorAll("[data-heatmap]")]
        .map((b) => b.dataset.heatmap)
        .filter((id, index, all) => all.indexOf(id) === index)
        .slice(0, Number(top.dataset.heatmapTop));
      if (ids.length) showSentence(ids[0], ids);
    }
  });

  if (whereForm) {
    whereForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const words = whereForm.elements.where.value.trim();
      if (words) showWhere(words);
    });
  }

  const params = new URL(window.location.href).searchParams;
  const sentence = params.get("heatmap");
  const words = (params.get("where") || "").trim();
  if (sentence && buttons(sentence).length) showSentence(sentence);
  else if (words && whereForm) showWhere(words);
}

if (stage && controls) setUp();
