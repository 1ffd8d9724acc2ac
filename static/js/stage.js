// The image stage of an analysis page: places the grid the model saw over the painting,
// moves between cells with the arrow keys, dims what the model did not see, and enlarges a
// region analysis's region.
//
// The server renders every cell as a link (`?cell=r,c`, so each state is a URL) carrying its
// box in original-image pixels; this module only positions them, in percent of the image, so
// the drawing follows the image at any width. It never assumes a grid shape: rows and
// columns come from the links' data attributes.

const stage = document.querySelector("[data-stage]");

function percent(value, total) {
  return `${(100 * value) / total}%`;
}

function place(element, box, width, height) {
  const [left, top, right, bottom] = box;
  element.style.left = percent(left, width);
  element.style.top = percent(top, height);
  element.style.width = percent(right - left, width);
  element.style.height = percent(bottom - top, height);
}

function parseBox(text) {
  return text.split(",").map(Number);
}

// A region's page enlarges the region: the canvas (painting and overlays, placed in percent
// of the painting) is scaled so that the region fills the stage.
function zoomTo(root, region, width, height) {
  const [left, top, right, bottom] = region;
  root.style.setProperty("--af-view-aspect", String((right - left) / (bottom - top)));
  root.style.setProperty("--af-canvas-width", percent(width, right - left));
  root.style.setProperty("--af-canvas-left", percent(-left, right - left));
  root.style.setProperty("--af-canvas-top", percent(-top, bottom - top));
  root.classList.add("af-stage-zoomed");
}

function setUp(root) {
  const width = Number(root.dataset.width);
  const height = Number(root.dataset.height);
  // The stage is no wider than the image may be at its greatest height (analysis.css).
  root.style.setProperty("--af-image-aspect", String(width / height));
  if (root.dataset.region) zoomTo(root, parseBox(root.dataset.region), width, height);
  const mark = root.querySelector(".af-crop-mark");
  if (mark) place(mark, parseBox(mark.dataset.box), width, height);
  const grid = root.querySelector("[data-grid]");
  if (!grid) return;
  const view = grid.querySelector("[data-view-box]");
  if (view) place(view, parseBox(view.dataset.viewBox), width, height);
  const cells = [...grid.querySelectorAll("[data-cell]")];
  const byPosition = new Map();
  for (const cell of cells) {
    place(cell, parseBox(cell.dataset.box), width, height);
    byPosition.set(`${cell.dataset.row},${cell.dataset.col}`, cell);
  }
  const rows = Number(grid.dataset.rows);
  const cols = Number(grid.dataset.cols);

  grid.addEventListener("keydown", (event) => {
    const cell = event.target.closest("[data-cell]");
    if (!cell) return;
    let row = Number(cell.dataset.row);
    let col = Number(cell.dataset.col);
    switch (event.key) {
      case "ArrowUp": row = Math.max(0, row - 1); break;
      case "ArrowDown": row = Math.min(rows - 1, row + 1); break;
      case "ArrowLeft": col = Math.max(0, col - 1); break;
      case "ArrowRight": col = Math.min(cols - 1, col + 1); break;
      case "Escape": {
        // "Whole painting" sits in the results' header, outside the stage.
        const clear = document.querySelector("[data-clear-cell]");
        if (clear) {
          event.preventDefault();
          clear.click();
        }
        return;
      }
      default: return;
    }
    event.preventDefault();
    byPosition.get(`${row},${col}`)?.focus();
  });

  // The toggle sits in the toolbar above the stage.
  const toggle = document.querySelector("[data-grid-toggle]");
  if (toggle) {
    toggle.addEventListener("click", () => {
      const shown = toggle.getAttribute("aria-pressed") !== "true";
      toggle.setAttribute("aria-pressed", String(shown));
      grid.classList.toggle("af-grid-hidden", !shown);
    });
  }
  const selected = grid.querySelector("[aria-current='true']");
  if (selected && root.dataset.focusCell === "true") selected.focus({ preventScroll: true });
}

if (stage) setUp(stage);
