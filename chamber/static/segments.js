// The segment builder's live count: as filters change, ask the server how many match.
// Progressive enhancement only: without it, "Show who matches" does the same.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-live-count]");
  const status = document.getElementById("segment-count");
  if (!form || !status) return;
  let timer = null;
  let asked = 0;
  const update = () => {
    const query = new URLSearchParams(new FormData(form));
    const mine = ++asked;
    fetch(`${form.dataset.liveCount}?${query}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((counts) => {
        if (!counts || mine !== asked) return;
        const included = status.querySelector('[data-count="included"]');
        const leftOut = status.querySelector('[data-count="left_out"]');
        if (included) included.textContent = counts.included;
        if (leftOut) leftOut.textContent = counts.left_out;
      })
      .catch(() => {});
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 300);
  });
  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 100);
  });
});
