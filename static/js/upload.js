// The workspace's drop zone: drag a file onto it or choose one; the file is checked here for
// type and size before it is sent (the server checks again), and previewed.

const zone = document.querySelector("[data-dropzone]");
const ACCEPTED = ["image/jpeg", "image/png", "image/webp", "image/tiff", "image/gif"];

function setUp() {
  const input = zone.querySelector("[data-file-input]");
  const status = zone.querySelector("[data-upload-status]");
  const preview = zone.querySelector("[data-preview]");
  const maxBytes = Number(zone.dataset.maxBytes);
  const form = zone.closest("form");

  function check(file) {
    if (!ACCEPTED.includes(file.type)) {
      return `${file.name} is not a JPEG, PNG, WebP, TIFF or GIF image.`;
    }
    if (maxBytes && file.size > maxBytes) {
      const size = (file.size / 1e6).toFixed(1);
      return `${file.name} is ${size} MB; the limit is ${zone.dataset.maxMb} MB.`;
    }
    return "";
  }

  function show(file) {
    const problem = check(file);
    status.textContent = problem || `${file.name} is ready: press Analyse.`;
    status.classList.toggle("text-danger", Boolean(problem));
    preview.hidden = Boolean(problem);
    if (!problem && file.type !== "image/tiff") {
      const image = preview.querySelector("[data-preview-image]");
      image.src = URL.createObjectURL(file);
      image.alt = `Preview of ${file.name}`;
      preview.querySelector("[data-preview-name]").textContent = file.name;
    }
    return !problem;
  }

  input.addEventListener("change", () => {
    if (input.files.length) show(input.files[0]);
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("af-dropzone-over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("af-dropzone-over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const [file] = event.dataTransfer.files;
    if (!file) return;
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    show(file);
  });
  form.addEventListener("submit", (event) => {
    const example = event.submitter && event.submitter.name === "example";
    if (example) return;
    const [file] = input.files;
    if (!file) {
      event.preventDefault();
      status.textContent = "Choose a painting to upload, or pick an example.";
      status.classList.add("text-danger");
      input.focus();
    } else if (!show(file)) {
      event.preventDefault();
    }
  });
}

if (zone) setUp();
