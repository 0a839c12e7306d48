/* sgdscape web app: clientside callbacks. Every step change (slider, play, arrow keys)
 * is drawn here from the run payload in the browser's dcc.Store: no server round trip.
 * Trace indices follow sgdscape/app/figures.py. Nothing from the page is evaluated. */
(function () {
  "use strict";
  var decoded = { key: null, bytes: null };
  function no() { return window.dash_clientside.no_update; }
  var current = { step: 0, max: 0 };

  function bytesOf(run) {
    var id = run.key + "|" + run.frames.codes.length;
    if (decoded.key !== id) {
      var text = atob(run.frames.codes);
      var bytes = new Uint8Array(text.length);
      for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      decoded = { key: id, bytes: bytes };
    }
    return decoded.bytes;
  }

  /* log minibatch loss of step k as rows (G2) of columns (G1) */
  function minibatchLog(run, k) {
    var f = run.frames, rows = f.shape[0], cols = f.shape[1], n = rows * cols;
    var bytes = bytesOf(run), ids = run.step_frames[k], levels = f.levels;
    var z = new Float64Array(n), i, j;
    if (ids.length === 1) {
      var lo = f.lo[ids[0]], scale = (f.hi[ids[0]] - lo) / levels, off = ids[0] * n;
      for (i = 0; i < n; i++) z[i] = lo + bytes[off + i] * scale;
    } else {
      for (j = 0; j < ids.length; j++) {
        var l = f.lo[ids[j]], s = (f.hi[ids[j]] - l) / levels, o = ids[j] * n;
        for (i = 0; i < n; i++) z[i] += Math.exp(l + bytes[o + i] * s);
      }
      for (i = 0; i < n; i++) z[i] = Math.log(z[i] / ids.length);
    }
    var out = new Array(rows), lo = Infinity, hi = -Infinity;
    for (i = 0; i < n; i++) if (isFinite(z[i])) { if (z[i] < lo) lo = z[i]; if (z[i] > hi) hi = z[i]; }
    for (var r = 0; r < rows; r++) out[r] = Array.prototype.slice.call(z, r * cols, (r + 1) * cols);
    return { z: out, lo: lo, hi: hi };
  }

  /* the step's own colour range and levels (as sgdscape.views.plotly_figures.contour_range) */
  function levels(trace, lo, hi) {
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (!(hi > lo)) hi = lo + 1;
    var n = trace.ncontours || 30;
    return {
      zauto: false, zmin: lo, zmax: hi, autocontour: false,
      contours: Object.assign({}, trace.contours, { start: lo, end: hi, size: (hi - lo) / n }),
    };
  }

  function copy(fig) {
    return { data: fig.data.slice(), layout: Object.assign({}, fig.layout) };
  }
  function set(fig, index, changes) {
    fig.data[index] = Object.assign({}, fig.data[index], changes);
  }
  function ok(p) {
    return p && p[0] !== null && p[1] !== null && isFinite(p[0]) && isFinite(p[1]);
  }
  /* an arrow of the arrow rule (sgdscape.views.step_figure.arrow_rule): iterate p -> tip, drawn as given */
  function arrow(p, tip, colour) {
    return {
      x: tip[0], y: tip[1], ax: p[0], ay: p[1],
      xref: "x", yref: "y", axref: "x", ayref: "y",
      showarrow: true, arrowhead: 2, arrowsize: 1.1, arrowwidth: 2.5,
      arrowcolor: colour, text: "",
    };
  }
  function vline(k) {
    return [{
      type: "line", x0: k, x1: k, y0: 0, y1: 1, yref: "paper",
      line: { color: "#555", width: 1, dash: "dot" },
    }];
  }
  function title(fig, text) {
    fig.layout.title = Object.assign({}, fig.layout.title, { text: text });
  }

  function writeStep(k) {
    try {
      var params = new URLSearchParams(window.location.search);
      if (k > 0) params.set("step", String(k)); else params.delete("step");
      var q = params.toString();
      window.history.replaceState(window.history.state, "",
        window.location.pathname + (q ? "?" + q : "") + window.location.hash);
    } catch (e) { /* the URL is a convenience; never break drawing */ }
  }

  function render(step, run) {
    if (!run || !run.figures) return [no(), no(), no(), no(), no(), no(), no(), no(), no(), no()];
    var T = run.n_steps, k = Math.max(0, Math.min(T - 1, Math.round(step || 0)));
    current = { step: k, max: T - 1 };
    var F = run.figures, p = run.path[k];
    var batch = copy(F.batch), risk = copy(F.risk), loss = copy(F.loss), noise = copy(F.noise);

    var left = minibatchLog(run, k);
    set(batch, 0, Object.assign({ z: left.z }, levels(F.batch.data[0], left.lo, left.hi)));
    set(batch, 1, { x: [p[0]], y: [p[1]] });
    var notes = [];
    // the full gradient first, so the minibatch arrow is drawn on top of it; each arrow in
    // the colour of its legend key (the palette of sgdscape.views.style, set by figures.py)
    var keys = F.batch.data;
    if (ok(p) && ok(run.full_arrow[k])) notes.push(arrow(p, run.full_arrow[k], keys[3].line.color));
    if (ok(p) && ok(run.arrow[k])) notes.push(arrow(p, run.arrow[k], keys[2].line.color));
    batch.layout.annotations = notes;
    set(batch, 2, { name: run.arrow_label[k] });
    set(batch, 3, { name: run.full_arrow_label[k] });
    if (run.fan) drawFan(batch, run, k, p);
    var shown = run.batches[k].join(", ") + (run.batch_sizes[k] > run.batches[k].length ? ", …" : "");
    title(batch, "step " + k + ": loss of minibatch [" + shown + "] (" + run.batch_sizes[k] +
      " sample" + (run.batch_sizes[k] > 1 ? "s" : "") + ")");

    var path = run.path.slice(0, k + 1);
    set(risk, 2, { x: path.map(function (q) { return q[0]; }), y: path.map(function (q) { return q[1]; }) });
    set(risk, 3, { x: [p[0]], y: [p[1]] });
    (run.pins || []).forEach(function (pin, j) {
      var q = pin.path[Math.min(k, pin.n_steps - 1)];
      set(risk, 5 + 2 * j, { x: [q[0]], y: [q[1]] });
    });

    set(loss, 2, { x: [k], y: [run.risk[k]] });
    loss.layout.shapes = vline(k);
    set(noise, 2, { x: [k], y: [run.noise_norm[k]] });
    noise.layout.shapes = vline(k);

    var label = "step " + k + " / " + (T - 1);
    if (run.diverged_step >= 0) label += " · diverged at " + run.diverged_step;
    writeStep(k);
    // the sharpness panel (figures.py's sharpness figure), when switched on
    var sharp = no(), sharpStyle = { display: "none" };
    if (F.sharpness) {
      sharp = copy(F.sharpness);
      set(sharp, 3, { x: [k], y: [run.sharpness[k]] });
      sharp.layout.shapes = vline(k);
      sharpStyle = { gridColumn: "1 / -1" };
    }
    var fanNote = run.fan_error ? run.fan_error : "";
    // the fan's five legend keys: the top row grows so the landscapes keep their size
    var top = run.fan ? { height: "560px" } : {};
    return [batch, risk, loss, noise, label, sharp, sharpStyle, fanNote, top, top];
  }

  /* step k's fan of next steps (figures.py: traces fan_first .. fan_first + 3, already
   * magnified on the server as the widget draws it): spokes from the iterate p to the
   * first max_spokes points, the points, their mean, the full-gradient step */
  function drawFan(batch, run, k, p) {
    var f = run.fan, i0 = run.fan_first, pts = f.points[k];
    var n = Math.min(pts[0].length, f.max_spokes), sx = [], sy = [];
    for (var i = 0; i < n; i++) {
      sx.push(p[0], pts[0][i], null);
      sy.push(p[1], pts[1][i], null);
    }
    set(batch, i0, { x: sx, y: sy });
    set(batch, i0 + 1, { x: pts[0], y: pts[1], name: f.label[k] });
    set(batch, i0 + 2, { x: [f.mean[k][0]], y: [f.mean[k][1]] });
    set(batch, i0 + 3, { x: [p[0], f.full[k][0]], y: [p[1], f.full[k][1]] });
  }

  /* ---------------------------------------------------------------- the chains view */
  /* record i of the chains: the offline page's slider update (chains_plotly.chains_player)
   * applied to a copy of the figure: per listed trace, its new x, y, z (null: unchanged),
   * then the layout's "a.b" and "annotations[0].text" keys */
  function renderChains(index, chains) {
    if (!chains || !chains.figure) return [no(), no()];
    var S = chains.steps.length, i = Math.max(0, Math.min(S - 1, Math.round(index || 0)));
    var args = chains.updates[i], update = args[0], changes = args[1], traces = args[2];
    var fig = copy(chains.figure);
    traces.forEach(function (t, j) {
      var c = {};
      ["x", "y", "z"].forEach(function (key) {
        if (update[key] && update[key][j] !== null && update[key][j] !== undefined) c[key] = update[key][j];
      });
      set(fig, t, c);
    });
    Object.keys(changes).forEach(function (key) {
      var m = /^annotations\[(\d+)\]\.text$/.exec(key);
      if (m) {
        var notes = (fig.layout.annotations || []).slice();
        notes[+m[1]] = Object.assign({}, notes[+m[1]], { text: changes[key] });
        fig.layout.annotations = notes;
        return;
      }
      var parts = key.split(".");
      fig.layout[parts[0]] = Object.assign({}, fig.layout[parts[0]]);
      fig.layout[parts[0]][parts[1]] = changes[key];
    });
    if (window.innerWidth <= 800) stackChains(fig);
    return [fig, "step " + chains.steps[i] + " (" + (i + 1) + " of " + S + " recorded)"];
  }

  /* on a phone the two panels of the chains figure are stacked (density above, basins or
   * spread below), each with its subplot title, the colour bar beside the density */
  function stackChains(fig) {
    var L = fig.layout;
    L.xaxis = Object.assign({}, L.xaxis, { domain: [0, 0.8] });
    L.yaxis = Object.assign({}, L.yaxis, { domain: [0.58, 1] });
    L.xaxis2 = Object.assign({}, L.xaxis2, { domain: [0, 1] });
    L.yaxis2 = Object.assign({}, L.yaxis2, { domain: [0.2, 0.46] });
    var notes = (L.annotations || []).slice();
    if (notes[0]) notes[0] = Object.assign({}, notes[0], { x: 0.4, y: 1 });
    if (notes[1]) notes[1] = Object.assign({}, notes[1], { x: 0.5, y: 0.46 });
    L.annotations = notes;
    L.legend = Object.assign({}, L.legend, { y: 0.1, yanchor: "top" });
    if (L.title && typeof L.title.text === "string") {
      L.title = Object.assign({}, L.title, { text: L.title.text.replace(": ", ":<br>"), font: { size: 12 } });
      L.margin = Object.assign({}, L.margin, { t: 90 });
    }
    fig.data.forEach(function (t, j) {
      if (t.type === "heatmap") {
        set(fig, j, { colorbar: Object.assign({}, t.colorbar, { x: 0.84, y: 0.79, len: 0.42, yanchor: "middle" }) });
      }
    });
  }

  function chainsSlider(chains, value) {
    if (!chains || !chains.steps) return [no(), no(), no()];
    var S = chains.steps.length, m = {};
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var v = Math.round(f * (S - 1));
      m[v] = String(chains.steps[v]);
    });
    return [S - 1, S - 1, m];
  }

  function showView(view) {
    var chains = view === "chains";
    return [chains ? { display: "none" } : {}, chains ? {} : { display: "none" }];
  }

  function marks(T) {
    var m = {}, last = T - 1;
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var v = Math.round(f * last);
      m[v] = String(v);
    });
    return m;
  }

  function slider(run, nIntervals, value) {
    var cc = window.dash_clientside.callback_context;
    var byPlayer = cc.triggered.some(function (t) { return t.prop_id.indexOf("player.") === 0; });
    if (!run) return [no(), no(), no()];
    if (byPlayer) {
      // about 300 frames for any run length (one step per frame for short runs)
      var next = (value || 0) + Math.max(1, Math.round(run.n_steps / 300));
      if ((value || 0) >= run.n_steps - 1) {
        window.dash_clientside.set_props("player", { disabled: true });
        window.dash_clientside.set_props("play", { children: "▶ play" });
        return [no(), no(), no()];
      }
      return [no(), Math.min(next, run.n_steps - 1), no()];
    }
    return [run.n_steps - 1, run.step, marks(run.n_steps)];
  }

  function togglePlay(n, disabled, run, value) {
    if (!n) return [no(), no()];
    if (disabled) {
      if (run && value >= run.n_steps - 1) window.dash_clientside.set_props("step-slider", { value: 0 });
      return [false, "❚❚ pause"];
    }
    return [true, "▶ play"];
  }

  function showOptions(optimizer, schedule, meta) {
    var wanted = (meta.optimizer[optimizer] || []).concat(meta.schedule[schedule] || []);
    return meta.fields.map(function (f) {
      return wanted.indexOf(f) >= 0 ? {} : { display: "none" };
    });
  }

  function onKey(e) {
    var t = e.target, tag = (t && t.tagName) || "";
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || (t && t.isContentEditable)) return;
    if (t && t.closest && (t.closest("#step-slider") || t.closest(".dash-dropdown"))) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var chainsView = document.getElementById("chains-view");
    if (chainsView && chainsView.style.display !== "none") return;  // its slider has the keys
    var k = current.step, jump = e.shiftKey ? 10 : 1;
    if (e.key === "ArrowRight") k += jump;
    else if (e.key === "ArrowLeft") k -= jump;
    else if (e.key === "Home") k = 0;
    else if (e.key === "End") k = current.max;
    else if (e.key === " " && tag !== "BUTTON") {
      var play = document.getElementById("play");
      if (play) play.click();
      e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    k = Math.max(0, Math.min(current.max, k));
    current.step = k;  // several presses may come before the next render
    window.dash_clientside.set_props("step-slider", { value: k });
  }
  document.addEventListener("keydown", onKey);

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    sgdscape: {
      render: render,
      slider: slider,
      toggle_play: togglePlay,
      show_options: showOptions,
      render_chains: renderChains,
      chains_slider: chainsSlider,
      show_view: showView,
    },
  });
})();
