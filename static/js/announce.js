// Says `message` in a status element (a live region, so screen readers read it out) and
// clears it again after a few seconds, so that an old message is not read as a new one.

const MESSAGE_SECONDS = 6;

export function announce(status, message) {
  if (!status) return;
  status.textContent = message;
  clearTimeout(status.afClearTimer);
  status.afClearTimer = setTimeout(() => {
    status.textContent = "";
  }, MESSAGE_SECONDS * 1000);
}
