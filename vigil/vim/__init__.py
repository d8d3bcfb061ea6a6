"""VIM drivers beyond the embedded cloud (:mod:`vigil.controller.vim` is their port)."""
