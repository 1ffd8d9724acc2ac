// "Crop a region": Cropper.js on the stage image, kept in step with four number fields
// (left, top, right, bottom in pixels of the painting), so the region can be drawn with a
// mouse or a finger, or typed and adjusted from the keyboard. "Analyse region" posts the
// form: the region becomes an analysis of its own, and "Undo region" leads back.

import Cropper from "../vendor/cropperjs/cropper.esm.js";

const stage = document.querySelector("[data-stage]");
const panel = document.querySelector("[data-crop-panel]");
const toggle = document.querySelector("[data-crop-toggle]");

function setUp() {
  const image = stage.querySelector(".af-stage-image");
  const fields = Object.fromEntries(
    [...panel.querySelectorAll("[data-crop-field]")].map((input) => [input.name, input]),
  );
  const width = Number(stage.dataset.width);
  const height = Number(stage.dataset.height);
  const region = stage.dataset.region?.split(",").map(Number);
  let cropper = null;

  function fillFields(data) {
    const left = Math.max(0, Math.round(data.x));
    const top = Math.max(0, Math.round(data.y));
    fields.left.value = left;
    fields.top.value = top;
    fields.right.value = Math.min(width, Math.round(data.x + data.width));
    fields.bottom.value = Math.min(height, Math.round(data.y + data.height));
  }

  function start() {
    stage.classList.add("af-cropping");
    panel.hidden = false;
    toggle.setAttribute("aria-pressed", "true");
    cropper = new Cropper(image, {
      viewMode: 1, // the box stays inside the image
      zoomable: false,
      movable: false,
      rotatable: false,
      scalable: false,
      autoCropArea: 0.5,
      // On a region's page the frame starts on that region.
      ...(region && { data: { x: region[0], y: region[1], width: region[2] - region[0], height: region[3] - region[1] } }),
      crop(event) {
        fillFields(event.detail);
      },
    });
    fields.left.focus();
  }

  function stop() {
    cropper?.destroy();
    cropper = null;
    stage.classList.remove("af-cropping");
    panel.hidden = true;
    toggle.setAttribute("aria-pressed", "false");
  }

  for (const input of Object.values(fields)) {
    input.addEventListener("change", () => {
      if (!cropper) return;
      const left = Number(fields.left.value);
      const top = Number(fields.top.value);
      cropper.setData({
        x: left,
        y: top,
        width: Math.max(1, Number(fields.right.value) - left),
        height: Math.max(1, Number(fields.bottom.value) - top),
      });
    });
  }
  toggle.addEventListener("click", () => (cropper ? stop() : start()));
  panel.querySelector("[data-crop-cancel]").addEventListener("click", () => {
    stop();
    toggle.focus();
  });
}

if (stage && panel && toggle) setUp();
