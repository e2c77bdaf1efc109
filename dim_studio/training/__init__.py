"""Training the DIM network the paper's way (no Qt; needs torch).

- ``samples``: one sample: crop, resize, flip, trimap, then composite;
- ``sources``: Composition-1k and plain photo/alpha folders, backgrounds;
- ``dataset``: the on-the-fly composition dataset, sampler and DataLoader;
- ``losses``: the alpha and compositional losses over unknown pixels;
- ``config``: the TOML configuration (``model/configs/stage{1,2,3}.toml``);
- ``initial``: the network a run starts from (``--init``);
- ``trainer``: the loop (stages, validation, checkpoints, resume, torchrun);
- ``checkpoints``, ``logs``, ``validation``, ``distributed``: its parts.
"""
