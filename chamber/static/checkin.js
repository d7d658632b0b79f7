// The door page's live count: refreshed every 10 seconds while the page is in view, so volunteers
// at two doors see each other's check-ins. Progressive enhancement: the page works without it.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-counts-url]");
  if (!box || !window.fetch) return;
  const url = box.dataset.countsUrl;
  const show = (counts) => {
    for (const element of box.querySelectorAll("[data-count]")) {
      const value = counts[element.dataset.count];
      if (Number.isInteger(value)) element.textContent = String(value);
    }
    const plural = box.querySelector("[data-plural]");
    if (plural && Number.isInteger(counts.businesses)) {
      plural.textContent = counts.businesses === 1 ? "business" : "businesses";
    }
  };
  let timer = null;
  const stop = () => {
    window.clearInterval(timer);
    timer = null;
  };
  const refresh = async () => {
    let response;
    try {
      response = await fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        redirect: "manual",
      });
    } catch (error) {
      return; // a patchy signal at the door: try again next time
    }
    if (response.type === "opaqueredirect" || !response.ok) {
      stop(); // logged out or gone: the page still works, the count waits for the next load
      return;
    }
    show(await response.json().catch(() => ({})));
  };
  const start = () => {
    if (timer === null) timer = window.setInterval(refresh, 10000);
  };
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      stop();
    } else {
      refresh();
      start();
    }
  });
  start();
});
