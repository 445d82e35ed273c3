"""Model cards for the trainers: every checkpoint a SynIB trainer saves carries a card rendered from the template."""

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from synib_hf.model_card import build_model_card, save_card_inputs

from .synib_config import synib_changes


class SynIBCardMixin:
    """`_save` writes the card beside the weights; `create_model_card` renders it (also called by `push_to_hub`)."""

    def _save(self, output_dir: Optional[str] = None, state_dict=None):
        # Why: every checkpoint the trainer writes carries its model card.
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            self.create_model_card(output_dir=output_dir)

    def create_model_card(
        self,
        model_name: Optional[str] = None,
        dataset_name: Optional[str] = None,
        tags: Union[str, Sequence[str], None] = None,
        output_dir: Optional[str] = None,
        eval_metrics: Optional[dict] = None,
        **kwargs,
    ) -> None:
        """Write `README.md`: SynIB settings, the latest evaluation as a `model-index`, a quick start, versions.

        Args:
            model_name: defaults to the last part of `hub_model_id`, else of `output_dir` (never a local path).
            dataset_name: the data set the evaluation ran on, as shown in the card.
            tags: extra Hub tags.
            eval_metrics: the metrics to report (`eval_accuracy`, `eval_synergy_accuracy`,
                `eval_synib/masked_accuracy_<m>`); by default the latest evaluation in the log history.
        """
        # Why: the Trainer's default card knows nothing of SynIB; `push_to_hub` calls this to refresh the card.
        if not self.is_world_process_zero():
            return
        output_dir = output_dir or self.args.output_dir
        repo_id = self.args.hub_model_id
        model_name = model_name or Path(repo_id or os.path.abspath(self.args.output_dir)).name
        if eval_metrics is None:
            evaluations = (h for h in reversed(self.state.log_history) if any(k.startswith("eval_") for k in h))
            eval_metrics = next(evaluations, {})
        core = self.core_model()
        config = getattr(core, "config", None)
        names = ("_name_or_path", "vision_name_or_path", "text_name_or_path", "vlm_name_or_path")
        base_models = [getattr(config, name, "") for name in names if getattr(config, name, "")]
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        card_inputs = dict(
            model_name=model_name,
            repo_id=repo_id,
            path=self._path.name,
            auto_class=getattr(self._path, "auto_class", "AutoModelForSequenceClassification"),
            base_models=[b for b in base_models if not os.path.isabs(b) and not os.path.exists(b)],
            dataset_name=dataset_name or "the evaluation set",
            tags=[*self._tag_names, *tags],
            hyperparameters=synib_changes(self.args),
            eval_metrics=eval_metrics,
        )
        card = build_model_card(**card_inputs)
        save_card_inputs(card_inputs, output_dir)
        card.save(os.path.join(output_dir, "README.md"))
