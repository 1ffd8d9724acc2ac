// The IIIF viewer page: Mirador (static/vendor/mirador) showing one manifest, with the
// annotation panel open and every annotation drawn on the canvas. One window, locked: the
// page is about this manifest, so Mirador's workspace controls (add, close, arrange) are off.

const root = document.querySelector("[data-mirador]");

// Mirador 4.0.0 gives its sidebar's tab bar `aria-orientation` on the bar's outer element,
// which has no role that takes it; screen readers read it from the element with the
// `tablist` role inside. Move it there whenever Mirador draws the bar.
function moveTabOrientation(scope) {
  for (const bar of scope.querySelectorAll("[aria-orientation]:not([role])")) {
    const list = bar.querySelector('[role="tablist"]');
    if (list) list.setAttribute("aria-orientation", bar.getAttribute("aria-orientation"));
    bar.removeAttribute("aria-orientation");
  }
}

if (root && window.Mirador) {
  new MutationObserver(() => moveTabOrientation(root)).observe(root, {
    subtree: true,
    childList: true,
    attributeFilter: ["aria-orientation"],
  });
  window.Mirador.viewer({
    id: root.id,
    windows: [
      {
        manifestId: root.dataset.manifest,
        sideBarOpen: true,
        sideBarPanel: "annotations",
        highlightAllAnnotations: true,
      },
    ],
    window: {
      allowClose: false,
      allowMaximize: false,
      // Room for the painting beside the panel on a phone too.
      defaultSideBarPanelWidth: Math.min(320, Math.round(window.innerWidth * 0.45)),
      panels: { search: false, layers: false },
    },
    workspace: { allowNewWindows: false, draggingEnabled: false, type: "mosaic" },
    workspaceControlPanel: { enabled: false },
  });
}
