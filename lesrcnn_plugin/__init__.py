"""lesrcnn-plugin: the LESRCNN family of lightweight super-resolution networks for BasicSR and MMagic.

The networks (``lesrcnn_plugin.archs``) and the tools import neither framework. Import
``lesrcnn_plugin.basicsr`` or ``lesrcnn_plugin.mmagic`` to register the family into one of them.
"""
__version__ = '0.1.0'
