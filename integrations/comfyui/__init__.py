"""ComfyUI custom node package: LESRCNN weights load in ComfyUI's "Load Upscale Model" node.

ComfyUI loads ``models/upscale_models/*`` with spandrel (``spandrel.ModelLoader``), which knows the
architectures of ``spandrel.MAIN_REGISTRY``. Importing ``lesrcnn_plugin.spandrel`` adds the LESRCNN
family there; ComfyUI imports this file at start-up, before any model is loaded. The package has no
nodes of its own: "Load Upscale Model" and "Upscale Image (using Model)" do the work. Install: see
README.md beside this file.
"""
try:
    import lesrcnn_plugin.spandrel  # noqa: F401  (adds LESRCNN to spandrel.MAIN_REGISTRY)
except ImportError as exc:  # ComfyUI logs this one line and carries on without the package
    raise ImportError(f'LESRCNN custom node: {exc}; install lesrcnn-plugin into ComfyUI\'s Python, or put a '
                      'clone of it on PYTHONPATH (see integrations/comfyui/README.md)') from exc

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
