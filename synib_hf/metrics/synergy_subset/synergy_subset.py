"""Synergy-subset accuracy: a multimodal model's accuracy on the examples that need both modalities.

Each example falls into one group by which of two unimodal predictors is right:

| group       | unimodal 1 | unimodal 2 |
|-------------|------------|------------|
| synergy     | wrong      | wrong      |
| cue_1       | right      | wrong      |
| cue_2       | wrong      | right      |
| coexistence | right      | right      |

and the multimodal model's accuracy is reported per group, with the group sizes. Self-contained (numpy, evaluate,
datasets) so it can be published as a metric on the Hub as it is.

Selection bias — read it beside a ground-truth slice and a chance reference, never alone. The synergy group is
chosen by the unimodal predictors' *mistakes*, not by how the label was generated. A multimodal model that copies
one modality makes much the same mistakes as that modality's predictor, so on this group it scores *below chance*
(in the held-out Gaussian-XOR checks of issue 14, plain training scored 0.23-0.44 here where the ground-truth synergy
slice said 0.61; on easy-VQA with additive fusion at the natural yes/no share, 5 seeds, CE-only scored 0.260 here
against a chance of 0.291 and SynIB 0.307, while on the ground-truth slice both scored 0.500), and any model that
stops copying gains here more than it gains on the truly synergistic examples.
Gains measured only here look larger than they are. Where the data has a ground-truth synergy slice (the
Gaussian-XOR synergy source; easy-VQA's yes/no questions with each question's prior taken out) report it beside
this; always give the group's size and a chance reference for it (e.g. the accuracy of guessing among the answers
the example's type allows). The group also mixes kinds of examples (on easy-VQA, yes/no and colour questions alike),
so report what it is made of.
"""

import datasets
import evaluate
import numpy as np


_CITATION = """@article{kontras2026synib,
  title   = {SynIB: Informational Bottleneck for Maximizing Synergy in Multimodal Learning},
  author  = {Kontras, Konstantinos and others},
  journal = {arXiv preprint arXiv:2606.09853},
  year    = {2026}
}"""

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): the multimodal model's predicted classes.
    references (`list[int]`): the true classes.
    unimodal_1 (`list[int]`): predictions of a model that sees only modality 1.
    unimodal_2 (`list[int]`): predictions of a model that sees only modality 2.
    modality_names (`tuple[str, str]`, *optional*): names used in the cue group keys (default "1", "2").

Returns:
    accuracy, synergy_accuracy, synergy_size, cue_<m>_accuracy, cue_<m>_size, coexistence_accuracy,
    coexistence_size. A group with no example has accuracy NaN.

Example:

    >>> metric = evaluate.load("path/to/synergy_subset")
    >>> metric.compute(predictions=[1, 0], references=[1, 1], unimodal_1=[0, 1], unimodal_2=[0, 0])["synergy_accuracy"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SynergySubset(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "unimodal_1": datasets.Value("int64"),
                    "unimodal_2": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, unimodal_1, unimodal_2, modality_names=("1", "2")):
        if len(modality_names) != 2:
            raise ValueError(f"modality_names must name the two modalities, got {modality_names!r}.")
        predictions, references = np.asarray(predictions), np.asarray(references)
        right_1, right_2 = np.asarray(unimodal_1) == references, np.asarray(unimodal_2) == references
        correct = predictions == references
        groups = {
            "synergy": ~right_1 & ~right_2,
            f"cue_{modality_names[0]}": right_1 & ~right_2,
            f"cue_{modality_names[1]}": ~right_1 & right_2,
            "coexistence": right_1 & right_2,
        }
        results = {"accuracy": float(correct.mean()) if len(correct) else float("nan")}
        for name, members in groups.items():
            results[f"{name}_accuracy"] = float(correct[members].mean()) if members.any() else float("nan")
            results[f"{name}_size"] = int(members.sum())
        return results
