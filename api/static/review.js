// The review page: level buttons, keyboard shortcuts, box-edge dragging, box classes and
// deletion, the mask overlay, and span relabelling. Everything the page needs comes from the
// JSON block #review-data (never inline script), and decisions go to
// POST /api/review/{item}/decision with the page's CSRF token.
"use strict";

(function () {
  const root = document.getElementById("review");
  if (!root) return;
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  const levels = {};
  let focus = 0;
  let fixing = false;
  let busy = false;
  // Working copies: a fix edits these; Escape restores the originals.
  let objects = structuredClone(data.objects);
  let spans = structuredClone(data.spans);
  const removed = new Set(); // indices of the boxes a fix deletes

  const criteria = Array.from(document.querySelectorAll(".criterion"));
  const svg = document.getElementById("boxes");
  const masks = document.getElementById("masks");

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
  }

  // A step that worked takes away the error an earlier one left ("levels are 5, 3 or 1" stayed
  // red after the 5 that followed); the image's stays while it is missing.
  function settled() {
    if (!unseen && status.classList.contains("error")) say("");
  }

  // An error whose way out is another page: the message, then a link to it.
  function sayGo(message, href, label) {
    say(message, true);
    const link = document.createElement("a");
    link.href = href;
    link.textContent = label;
    status.append(" ", link);
  }

  // ---- the image ----------------------------------------------------------------------------
  // An image that does not load (its file moved or gone, a blob store down) leaves the boxes
  // over a blank: labels nobody can see are not accepted or fixed. They may be rejected, the
  // comment saying why: a sample without its image is no training sample, and a reload hands
  // the annotator the same item, so without it they were held there until a lead stepped in.
  const photo = document.getElementById("photo");
  let unseen = false;
  const UNSEEN_COMMENT = "the image did not load";
  function imageMissing() {
    unseen = true;
    const why = "the image did not load, so its labels cannot be accepted or fixed: reload the "
      + "page; if it still does not load, reject the item (r: the comment says why) and tell "
      + "your lead (its image file may be missing).";
    sayGo(why, "/review", "Reload");
  }
  if (photo) {
    photo.addEventListener("error", imageMissing);
    if (photo.complete && !photo.naturalWidth) imageMissing(); // failed before this ran (defer)
  }

  // ---- rubric levels -------------------------------------------------------------------------
  function setFocus(index) {
    if (!criteria.length) return;
    focus = (index + criteria.length) % criteria.length;
    criteria.forEach((row, i) => row.classList.toggle("focus", i === focus));
  }

  function setLevel(criterion, level) {
    settled();
    levels[criterion] = level;
    document.querySelectorAll(`.level[data-criterion="${CSS.escape(criterion)}"]`).forEach((b) => {
      b.classList.toggle("chosen", Number(b.dataset.level) === level);
      b.setAttribute("aria-pressed", String(Number(b.dataset.level) === level));
    });
  }

  document.querySelectorAll(".level").forEach((button) => {
    button.addEventListener("click", () => {
      setLevel(button.dataset.criterion, Number(button.dataset.level));
      setFocus(criteria.findIndex((row) => row.dataset.criterion === button.dataset.criterion) + 1);
    });
  });

  // ---- boxes ---------------------------------------------------------------------------------
  // Draws box `index` as the fix has it now: its edges, class and colour, or gone if deleted.
  function drawBox(index) {
    const group = svg.querySelector(`.box[data-index="${index}"]`);
    const row = document.querySelector(`tr.object[data-index="${index}"]`);
    const gone = removed.has(index);
    group.toggleAttribute("hidden", gone);
    if (row) {
      row.classList.toggle("removed", gone);
      // Named with the box it deletes: a screen reader read every row's button as "delete".
      const button = row.querySelector(".object-delete");
      button.textContent = gone ? "restore" : "delete";
      const named = `${button.textContent} box ${index}: ${objects[index].category}`;
      button.setAttribute("aria-label", named);
      row.querySelector(".object-category").value = objects[index].category;
    }
    const color = data.colors[objects[index].category] || "#888";
    const [x, y, w, h] = objects[index].bbox;
    const rect = group.querySelector("rect");
    rect.setAttribute("stroke", color);
    rect.setAttribute("x", x);
    rect.setAttribute("y", y);
    rect.setAttribute("width", w);
    rect.setAttribute("height", h);
    const ends = {
      left: [x, y, x, y + h],
      right: [x + w, y, x + w, y + h],
      top: [x, y, x + w, y],
      bottom: [x, y + h, x + w, y + h],
    };
    group.querySelectorAll(".edge").forEach((line) => {
      const [x1, y1, x2, y2] = ends[line.dataset.edge];
      line.setAttribute("x1", x1);
      line.setAttribute("y1", y1);
      line.setAttribute("x2", x2);
      line.setAttribute("y2", y2);
    });
    const tag = group.querySelector("text");
    tag.setAttribute("fill", color);
    tag.textContent = objects[index].category;
    placeTag(tag, x, y, w);
    const cell = document.querySelector(`.bbox[data-index="${index}"]`);
    if (cell) cell.textContent = JSON.stringify(objects[index].bbox.map((v) => Math.round(v * 10) / 10));
  }

  // A box's class is written above its top edge, left-aligned with it. Where that would leave
  // the image, which clips it, it goes below the edge, inside the box (a box at the image's
  // top), or right-aligned with the box (a long name on a box near the right side).
  function placeTag(tag, x, y, w) {
    tag.setAttribute("text-anchor", "start");
    tag.setAttribute("x", x);
    tag.setAttribute("y", y);
    const drawn = tag.getBBox(); // image units, without the outline
    if (!drawn.width) return; // hidden (the boxes are off, or it is deleted): placed when shown
    const outline = Number(tag.getAttribute("stroke-width")) || 0;
    if (drawn.y - outline < 0) tag.setAttribute("y", 2 * y - drawn.y + outline);
    if (drawn.x + drawn.width + outline > data.width) {
      tag.setAttribute("text-anchor", "end");
      tag.setAttribute("x", Math.min(x + w, data.width - outline));
    }
  }

  function toImage(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  function moveEdge(index, edge, p) {
    const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
    let [x, y, w, h] = objects[index].bbox;
    let right = x + w;
    let bottom = y + h;
    const px = clamp(Math.round(p.x), 0, data.width);
    const py = clamp(Math.round(p.y), 0, data.height);
    if (edge === "left") x = Math.min(px, right - 1);
    if (edge === "right") right = Math.max(px, x + 1);
    if (edge === "top") y = Math.min(py, bottom - 1);
    if (edge === "bottom") bottom = Math.max(py, y + 1);
    w = right - x;
    h = bottom - y;
    const obj = objects[index];
    obj.bbox = [x, y, w, h];
    settled();
    // The generator's mask no longer matches a moved edge: the fix carries the box alone, and
    // the overlay stops showing that mask.
    const hadMask = Boolean(obj.mask);
    obj.mask = null;
    obj.area = w * h;
    drawBox(index);
    if (hadMask) drawMasks();
  }

  // ---- masks ---------------------------------------------------------------------------------
  // Drawn here from the labels the fix has now (a server-drawn overlay would keep showing the
  // mask of a box moved, deleted or given another class), as the API's masks.png draws them.

  // The run lengths of COCO compressed RLE counts, read as pycocotools' rleFrString does:
  // 6-bit groups of 5 value bits and a continuation bit, sign extension, and runs after the
  // second stored as differences. null for counts that end inside a number.
  function rleRuns(counts) {
    if (Array.isArray(counts)) return counts;
    if (typeof counts !== "string") return null;
    const runs = [];
    let p = 0;
    while (p < counts.length) {
      let x = 0;
      let k = 0;
      let c = 0;
      do {
        if (p >= counts.length) return null;
        c = counts.charCodeAt(p) - 48;
        x += (c & 0x1f) * 2 ** (5 * k); // arithmetic, not <<: no 32-bit wrap-around
        p += 1;
        k += 1;
      } while (c & 0x20);
      if (c & 0x10) x -= 2 ** (5 * k);
      if (runs.length > 2) x += runs[runs.length - 2];
      runs.push(x);
    }
    return runs;
  }

  function drawMasks() {
    const { width, height } = data;
    if (!masks || !width || !height) return;
    const image = new ImageData(width, height);
    const pixels = width * height;
    objects.forEach((obj, index) => {
      if (removed.has(index) || !obj.mask || !Array.isArray(obj.mask.size)) return;
      if (obj.mask.size[0] !== height || obj.mask.size[1] !== width) return;
      const runs = rleRuns(obj.mask.counts);
      if (!runs) return;
      const hex = (data.colors[obj.category] || "#888888").slice(1);
      const rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
      let start = 0;
      runs.forEach((run, i) => {
        const end = Math.min(start + run, pixels);
        // the runs alternate off, on, off, ... down the columns (pixel x * height + y)
        if (i % 2) {
          for (let q = start; q < end; q += 1) {
            const x = Math.floor(q / height);
            const at = ((q - x * height) * width + x) * 4;
            image.data[at] = rgb[0];
            image.data[at + 1] = rgb[1];
            image.data[at + 2] = rgb[2];
            image.data[at + 3] = 110;
          }
        }
        start += run;
      });
    });
    masks.getContext("2d").putImageData(image, 0, 0);
  }

  // ---- a box's class, deleting a box, drawing a new one ---------------------------------------
  // Listened to on the table: rows of boxes drawn in fix mode come and go.
  const table = document.querySelector("table.objects");
  if (table) {
    table.addEventListener("change", (event) => {
      const select = event.target.closest(".object-category");
      if (!select) return;
      const index = Number(select.dataset.index);
      objects[index].category = select.value;
      settled();
      drawBox(index);
      drawMasks();
      select.blur(); // hand the keys back to the shortcuts: f saves, Esc cancels
    });
    table.addEventListener("click", (event) => {
      const button = event.target.closest(".object-delete");
      if (!button || !fixing) return;
      const index = Number(button.dataset.index);
      if (removed.has(index)) removed.delete(index);
      else removed.add(index);
      settled();
      drawBox(index);
      drawMasks();
      button.blur(); // Enter or space would press it again: keys go back to the shortcuts
    });
  }

  const newClass = document.getElementById("new-class");
  if (newClass) newClass.addEventListener("change", () => newClass.blur());

  // A box drawn from `from` to `to` (image points): a new object of the class chosen in the
  // hint, with no mask (the page cannot draw one), its row and shape cloned from templates.
  // No `ref` in its attributes: the queue gives the stored attributes back to an object by
  // its ref (review/decision.py with_attributes), and a new one has none.
  function addBox(from, to) {
    const index = objects.length;
    objects.push({
      category: newClass.value,
      bbox: [0, 0, 1, 1],
      mask: null,
      area: 1,
      visible_fraction: 1.0,
      attributes: {},
    });
    const row = document.getElementById("new-box-row").content.firstElementChild.cloneNode(true);
    row.dataset.index = index;
    row.querySelector(".index").textContent = index;
    row.querySelectorAll(".object-category, .object-delete, .bbox").forEach((e) => {
      e.dataset.index = index;
    });
    table.tBodies[0].append(row);
    const shape = document.getElementById("new-box-shape").content.querySelector("g");
    const group = shape.cloneNode(true);
    group.dataset.index = index;
    group.querySelectorAll(".edge").forEach((line) => { line.dataset.index = index; });
    svg.append(group);
    sizeBox(index, from, to);
    return index;
  }

  function sizeBox(index, from, to) {
    const [left, right] = [from.x, to.x].sort((a, b) => a - b);
    const [top, bottom] = [from.y, to.y].sort((a, b) => a - b);
    // at least a pixel wide and high, and inside the image
    const x = Math.min(left, data.width - 1);
    const y = Math.min(top, data.height - 1);
    const obj = objects[index];
    obj.bbox = [x, y, Math.max(right - x, 1), Math.max(bottom - y, 1)];
    settled();
    obj.area = obj.bbox[2] * obj.bbox[3];
    drawBox(index);
  }

  // A point of the image under the pointer, in whole pixels inside the image.
  function pixelAt(event) {
    const p = toImage(event);
    const clamp = (v, hi) => Math.min(Math.max(Math.round(v), 0), hi);
    return { x: clamp(p.x, data.width), y: clamp(p.y, data.height) };
  }

  if (svg) {
    objects.forEach((_, i) => drawBox(i));
    drawMasks();
    let drag = null;
    svg.addEventListener("pointerdown", (event) => {
      if (!fixing) return;
      const edge = event.target.closest(".edge");
      if (edge) drag = { index: Number(edge.dataset.index), edge: edge.dataset.edge };
      else if (newClass) drag = { index: null, edge: "new", from: pixelAt(event) };
      else return;
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", (event) => {
      if (!drag) return;
      if (drag.edge !== "new") return moveEdge(drag.index, drag.edge, toImage(event));
      const to = pixelAt(event);
      if (drag.index !== null) return sizeBox(drag.index, drag.from, to);
      // a click, or a slip of a pixel or two, draws nothing
      const far = Math.min(Math.abs(to.x - drag.from.x), Math.abs(to.y - drag.from.y)) >= 2;
      if (far) drag.index = addBox(drag.from, to);
    });
    const stop = () => { drag = null; };
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
    const toggle = (id, target) => {
      const box = document.getElementById(id);
      const layer = document.getElementById(target);
      if (!box) return;
      box.addEventListener("change", () => {
        if (layer) layer.toggleAttribute("hidden", !box.checked);
        if (target === "boxes" && box.checked) objects.forEach((_, i) => drawBox(i)); // tags
      });
    };
    toggle("toggle-boxes", "boxes");
    toggle("toggle-masks", "masks");
  }

  function flip(id) {
    const box = document.getElementById(id);
    if (!box) return;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change"));
  }

  // ---- spans ---------------------------------------------------------------------------------
  document.querySelectorAll(".span-label").forEach((select) => {
    select.addEventListener("change", () => {
      const index = Number(select.dataset.span);
      spans[index].label = select.value;
      settled();
      const mark = document.querySelector(`mark[data-span="${index}"]`);
      if (mark) {
        mark.title = select.value || "(not a span)";
        mark.classList.toggle("removed", !select.value);
        if (select.value) { // the new label's colour, as every text of the batch shows it
          mark.classList.remove(...[...mark.classList].filter((c) => c.startsWith("label-")));
          mark.classList.add(`label-${data.span_colors[select.value] || 0}`);
        }
      }
      select.blur(); // hand the keys back to the shortcuts: f saves, Esc cancels
    });
  });

  // ---- fix mode ------------------------------------------------------------------------------
  // Whether the fix changed a label: a box moved, drawn, deleted or given another class, or a
  // span's label.
  function edited() {
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    return !(same(objects, data.objects) && !removed.size && same(spans, data.spans));
  }

  // A reload or a link away in fix mode dropped the fix's edits without a word: the browser
  // asks first while there are edits not saved. Listened to only in fix mode (a page that
  // listens for beforeunload is kept out of some browsers' back-forward cache).
  function unsavedFix(event) {
    if (!edited()) return;
    event.preventDefault();
    event.returnValue = ""; // what older browsers ask for before they show the prompt
  }

  function setFixing(on) {
    fixing = on;
    if (on) window.addEventListener("beforeunload", unsavedFix);
    else window.removeEventListener("beforeunload", unsavedFix);
    settled();
    document.getElementById("cancel-fix").hidden = !on;
    root.classList.toggle("fixing", on);
    document.getElementById("fix-hint").hidden = !on;
    document.querySelectorAll(".span-label, .object-category, .object-delete").forEach((s) => {
      s.disabled = !on;
    });
    document.getElementById("fix").firstChild.textContent = on ? "Save fix " : "Fix ";
    if (!on) {
      objects = structuredClone(data.objects);
      spans = structuredClone(data.spans);
      removed.clear();
      document.querySelectorAll(".added").forEach((e) => e.remove()); // boxes drawn
      if (svg) {
        objects.forEach((_, i) => drawBox(i));
        drawMasks();
      }
      document.querySelectorAll(".span-label").forEach((s) => {
        s.value = spans[Number(s.dataset.span)].label;
        s.dispatchEvent(new Event("change"));
      });
    }
  }

  // ---- deciding ------------------------------------------------------------------------------
  async function decide(verdict) {
    if (busy) return;
    if (unseen && verdict !== "reject") return imageMissing();
    const comment = document.getElementById("comment").value || (unseen ? UNSEEN_COMMENT : "");
    const body = { verdict, levels, comment };
    if (verdict === "fix") {
      if (data.modality === "image") body.objects = objects.filter((_, i) => !removed.has(i));
      // The page changes labels, never offsets; a stored value may not be the text its span
      // covers (what the text check flagged), so none is sent: the server knows the text.
      else body.spans = spans.filter((s) => s.label).map((s) => ({ ...s, value: null }));
    }
    busy = true;
    say("saving…");
    try {
      const response = await fetch(`/api/review/${data.item_id}/decision`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        const detail = String(problem.detail || `HTTP ${response.status}`);
        busy = false;
        // The session is gone (logged out, here or in another tab, or expired): the API's
        // answer speaks of bearer tokens, which an annotator on this page never sees.
        if (response.status === 401) {
          const why = "not saved: you are logged out (perhaps in another tab).";
          return sayGo(why, "/login", "Log in again");
        }
        // Logged in anew elsewhere: this page still carries the old session's CSRF token.
        if (response.status === 403 && detail.includes("X-CSRF-Token")) {
          return sayGo("not saved: this page is from an earlier login.", "/review", "Reload it");
        }
        // Decided in another tab, taken back (review release) or closed meanwhile: this item
        // is done with here, and the next one waits.
        if (/already decided|taken back|takes no more decisions|is not assigned/.test(detail)) {
          return sayGo(`not saved: ${detail}.`, "/review", "Next item");
        }
        throw new Error(detail);
      }
      say(`${verdict} saved; loading the next item…`);
      window.removeEventListener("beforeunload", unsavedFix); // saved: nothing is lost
      window.location.assign("/review");
    } catch (error) {
      busy = false;
      say(`not saved: ${error.message}`, true);
    }
  }

  const cancel = document.getElementById("cancel-fix");
  if (cancel) cancel.addEventListener("click", () => setFixing(false)); // Esc, on a touch screen

  document.querySelectorAll("[data-verdict]").forEach((button) => {
    button.addEventListener("click", () => onVerdict(button.dataset.verdict));
  });

  function onVerdict(verdict) {
    if (unseen && verdict !== "reject") return imageMissing();
    if (verdict !== "fix") return decide(verdict);
    // A text judged by its document label has no Fix: a decision cannot change that label.
    if (!document.getElementById("fix")) {
      const how = "accept it if the label is right, reject it if not";
      return say(`this text is judged by its label: ${how}`, true);
    }
    if (!fixing) return setFixing(true);
    // f pressed twice by mistake would record a "fix" of labels it left as they were
    if (!edited()) {
      return say("nothing changed yet: correct a label first, or Esc to cancel", true);
    }
    return decide("fix");
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Text boxes and selects keep their keys; a clicked checkbox (boxes, masks) does not, or
    // every shortcut would stop working until the page is clicked elsewhere.
    const typing = event.target.closest("textarea, select, input:not([type=checkbox])");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    // A key held down repeats, and the repeats would reach the next item as soon as it loads:
    // a verdict given to an item nobody saw. Only moving between criteria repeats.
    if (event.repeat && !["arrowdown", "arrowup", "j", "k"].includes(key)) return;
    if (key === "a") decide("accept");
    else if (key === "r") decide("reject");
    else if (key === "f") onVerdict("fix");
    else if (key === "escape" && fixing) setFixing(false);
    else if (key === "b") flip("toggle-boxes");
    else if (key === "m") flip("toggle-masks");
    else if (key === "arrowdown" || key === "j") setFocus(focus + 1);
    else if (key === "arrowup" || key === "k") setFocus(focus - 1);
    else if (["1", "2", "3", "4", "5"].includes(key) && criteria.length) {
      const level = Number(key);
      if (level === 2 || level === 4) {
        say("levels are 5 (gold), 3 (acceptable) or 1 (needs re-annotation)", true);
      } else {
        setLevel(criteria[focus].dataset.criterion, level);
        setFocus(focus + 1);
      }
    } else return;
    event.preventDefault();
  });
})();
