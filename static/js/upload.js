/* Upload page: drag-and-drop, a quick size/type check, and a progress bar (XMLHttpRequest).
   Without this script the form is a plain POST and the server answers with the same errors. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("dropzone");
  var fileLabel = document.getElementById("dropzone-file");
  var preview = document.getElementById("dropzone-preview");
  var progress = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-progress-bar");
  var barLabel = document.getElementById("upload-progress-label");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
  var okExt = /\.(jpe?g|png|webp|tiff?|bmp|heic|heif|dcm)$/i;

  function errorBox(name) { return form.querySelector('[data-error-for="' + name + '"]'); }
  function showError(name, text) {
    var box = errorBox(name) || errorBox("__all__");
    box.textContent = text;
    box.hidden = !text;
    var field = box.closest(".field");
    if (field) field.classList.toggle("has-error", !!text);
  }
  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (box) { showError(box.getAttribute("data-error-for"), ""); });
  }

  function checkFile(file) {
    if (!file) return "Escolha a imagem da radiografia.";
    if (maxBytes && file.size > maxBytes) {
      return "Arquivo muito grande: o limite é " + Math.floor(maxBytes / 1048576) + " MB.";
    }
    if (file.size === 0) return "O arquivo está vazio.";
    var typeOk = (file.type && file.type.indexOf("image/") === 0) || file.type === "application/dicom" || okExt.test(file.name);
    if (!typeOk) return "Este arquivo não é uma imagem. Envie JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM.";
    return "";
  }

  function showFile(file) {
    var size = file && file.size < 1048576 ? Math.max(1, Math.round(file.size / 1024)) + " KB"
      : file ? (file.size / 1048576).toFixed(1).replace(".", ",") + " MB" : "";
    fileLabel.textContent = file ? file.name + " (" + size + ")" : "";
    if (file && file.type && /^image\/(png|jpeg|webp|gif|bmp)$/.test(file.type)) {
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
    } else {
      preview.hidden = true;
    }
    showError("file", file ? checkFile(file) : "");
  }

  input.addEventListener("change", function () { showFile(input.files[0]); });
  ["dragenter", "dragover"].forEach(function (ev) {
    zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("is-over"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    zone.addEventListener(ev, function () { zone.classList.remove("is-over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      showFile(input.files[0]);
    }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    clearErrors();
    var problem = checkFile(input.files[0]);
    if (problem) { showError("file", problem); input.focus(); return; }

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (ev) {
      if (!ev.lengthComputable) return;
      var pct = Math.round((ev.loaded / ev.total) * 100);
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      barLabel.textContent = pct < 100 ? "Enviando… " + pct + "%" : "Verificando a imagem…";
    });
    xhr.addEventListener("load", function () {
      var data = {};
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = {}; }
      if (xhr.status >= 200 && xhr.status < 300 && data.redirect) {
        barLabel.textContent = "Recebido! Abrindo o resultado…";
        window.location.assign(data.redirect);
        return;
      }
      progress.hidden = true;
      submit.disabled = false;
      var errors = data.errors || { __all__: ["Não foi possível enviar agora. Tente novamente em instantes."] };
      Object.keys(errors).forEach(function (name) { showError(name, errors[name].join(" ")); });
      var first = form.querySelector(".has-error input");
      if (first) first.focus();
    });
    xhr.addEventListener("error", function () {
      progress.hidden = true;
      submit.disabled = false;
      showError("__all__", "Falha de conexão durante o envio. Verifique a internet e tente de novo.");
    });
    progress.hidden = false;
    bar.style.width = "0";
    barLabel.textContent = "Enviando…";
    submit.disabled = true;
    xhr.send(new FormData(form));
  });
})();
