// A campaign's progress while it sends: ask the server for the figures every few seconds and
// write them into the page. Progressive enhancement only: reloading the page shows the same.
document.addEventListener("DOMContentLoaded", () => {
  const figures = document.querySelector("[data-progress-url]");
  if (!figures) return;
  const url = figures.dataset.progressUrl;
  const poll = () => {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((counts) => {
        if (!counts) return;
        for (const [name, value] of Object.entries(counts)) {
          const cell = figures.querySelector(`[data-figure="${name}"]`);
          if (cell) cell.textContent = value;
        }
        if (counts.status === "sending") setTimeout(poll, 3000);
        else window.location.reload(); // finished, paused or cancelled: the page's buttons change
      })
      .catch(() => setTimeout(poll, 10000));
  };
  setTimeout(poll, 3000);
});
