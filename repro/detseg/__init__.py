"""COCO detection and ADE20K segmentation on the IN-1K backbones (Sec. 6.3, Tables 17 and 18) through the
paper's MMDetection 3.x / MMSegmentation 1.x (App. A.3), run by mmengine's Runner inside our run directory.

* :mod:`repro.detseg.compat` -- every shim the OpenMMLab stack needs here; importing this package installs
  them, so import it before any ``mm*`` package (the task modules do);
* :mod:`repro.detseg.backbone` -- a timm model of the repro zoo as an mmdet / mmseg backbone
  (``forward_intermediates``), initialised from the upstream IN-1K run;
* :mod:`repro.detseg.configs` -- the detectors' / segmentors' configs, taken from the configs the packages ship;
* :mod:`repro.detseg.runner` -- training (resumable), evaluation and ``summary.json``;
* :mod:`repro.detseg.proxy` -- the smoke profile's stand-ins: COCO- and ADE20K-style data sets composed from
  Fashion-MNIST items pasted on canvases.
"""

from repro.detseg import compat

compat.install()
