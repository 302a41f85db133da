"""Diffusion image generators, labelled by construction (DESIGN.md §4).

`object_paste` (X-Paste: generate single objects, segment, filter, pool, paste), `layout`
(GLIGEN: boxes + phrases -> image) and `inpaint` (paint one object into a background inside a
box). `models` is the one place a diffusers pipeline is loaded: from a local folder or the
Hugging Face cache, never from the network, once per process. torch and diffusers are imported
by these modules only, so naming another generator never imports them.
"""
