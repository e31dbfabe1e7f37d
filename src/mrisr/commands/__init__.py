"""The CLI layer: what each ``mrisr`` command does, one module per job (``cli.py`` parses the
options and calls ``run`` here). Nothing below this package imports it; the library it drives
lives in ``io``, ``degrade``, ``metrics``, ``infer``, ``train``, ``export`` and ``checkpoint``.

=================  =====================================================================
command            module
=================  =====================================================================
degrade            :mod:`mrisr.commands.degrade`
eval               :mod:`mrisr.commands.evaluate` (reference and ``--no-reference``)
fid                :mod:`mrisr.commands.fid`
info               :mod:`mrisr.commands.info`
demo               :mod:`mrisr.commands.demo`
report             :mod:`mrisr.commands.report`
upscale            :mod:`mrisr.commands.upscale`
train              :mod:`mrisr.commands.train`
learn-kernel       :mod:`mrisr.commands.learn_kernel`
models             :mod:`mrisr.commands.models`
export             :mod:`mrisr.commands.export`
convert-pth        :mod:`mrisr.commands.convert`
=================  =====================================================================
"""
