"""repro.models: the EfficientTrain++ Table 7 model zoo, input-size switching and the cost model.

``create(name, variant, num_classes, img_size)`` builds a model by paper or timm name; ``set_input_size(model, B)``
is the trainer's hook at each curriculum stage switch; :mod:`repro.models.flops` measures parameters and FLOPs;
:mod:`repro.models.cost` serves the Table 7 cost columns.
"""

from repro.models.zoo import FAMILIES, TABLE7, ZooEntry, create, entry, family_of, set_input_size

__all__ = ["FAMILIES", "TABLE7", "ZooEntry", "create", "entry", "family_of", "set_input_size"]
