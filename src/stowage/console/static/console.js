// The console's only script: drag-and-drop uploads with progress, delete confirmation,
// copying share links. Served from /console/static (the CSP allows only 'self').
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content;

function upload(file, list) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  const bar = document.createElement("progress");
  label.textContent = file.name;
  bar.max = file.size || 1;
  bar.value = 0;
  item.append(label, " ", bar);
  list.append(item);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/console/upload?name=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { bar.value = e.loaded; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200) {
        bar.value = bar.max;
        item.classList.add("done");
        const link = document.createElement("a");
        link.href = body.url;
        link.textContent = "uploaded";
        item.append(" ", link);
      } else {
        item.classList.add("failed");
        item.append(" " + (body.message || "upload failed (" + xhr.status + ")"));
      }
      resolve(xhr.status === 200);
    };
    xhr.onerror = () => { item.classList.add("failed"); item.append(" network error"); resolve(false); };
    xhr.send(file);
  });
}

async function uploadAll(files, list) {
  let ok = true;
  for (const file of files) ok = (await upload(file, list)) && ok;
  if (ok) window.setTimeout(() => window.location.assign("/console"), 400);
}

const drop = document.getElementById("drop");
if (drop) {
  const input = document.getElementById("files");
  const list = document.getElementById("uploads");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    uploadAll([...e.dataTransfer.files], list);
  });
  input.addEventListener("change", () => uploadAll([...input.files], list));
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (e) => {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.querySelector(button.dataset.copy);
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (_) {
      document.execCommand("copy");
    }
    button.nextElementSibling.hidden = false;
  });
}
