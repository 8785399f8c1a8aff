// levekår web: draws the Plotly figures embedded in the page; nothing is fetched from another host.
"use strict";
(function () {
  const config = {
    responsive: true,
    displaylogo: false,
    // Plotly's default fetches world outlines from its CDN when a map needs them; ours never do, and if one
    // ever did, it would ask this server instead.
    topojsonURL: "/static/",
  };

  // plotly.js wants a world outline for every geo map, even with every base layer off; an empty one given
  // here means it never fetches one (PlotlyGeoAssets is where plotly.js looks first)
  const empty = { type: "GeometryCollection", geometries: [] };
  const objects = {};
  ["coastlines", "land", "ocean", "lakes", "rivers", "countries", "subunits"].forEach((k) => { objects[k] = empty; });
  const world = { type: "Topology", arcs: [], transform: { scale: [1, 1], translate: [0, 0] }, objects: objects };
  window.PlotlyGeoAssets = { topojson: { world_110m: world, world_50m: world } };

  function draw(el) {
    const source = document.getElementById(el.dataset.figure);
    if (!source) return;
    const fig = JSON.parse(source.textContent);
    const geo = el.dataset.geo;
    const render = (gj) => {
      if (gj) fig.data.forEach((t) => { t.geojson = gj; });
      Plotly.newPlot(el, fig.data, fig.layout, config).then(() => {
        el.setAttribute("data-ready", "1");
        const target = el.dataset.clickBase;
        if (target) {
          el.on("plotly_click", (ev) => {
            const p = ev.points && ev.points[0];
            const code = p && (p.location || (p.customdata));
            if (code) window.location.href = target + encodeURIComponent(code);
          });
        }
      });
    };
    if (geo) {
      fetch(geo, { credentials: "same-origin" }).then((r) => r.json()).then(render);
    } else {
      render(null);
    }
  }

  document.querySelectorAll("[data-figure]").forEach(draw);
  // choosing in a filter form shows the result at once (the submit button stays for keyboard users)
  document.querySelectorAll("form.auto select").forEach((s) => {
    s.addEventListener("change", () => s.form.submit());
  });
})();
