"""View builders: each turns `(model, inputs)` into [`Views`] (the clean view and one masked view per modality) and
knows nothing of the trainer; `synib_hf.objective` turns views into the loss.

* [`NativeViews`] (`native_views`) — models implementing the native protocol: encoders once, the fusion head per view.
* [`InputViews`] (`input_views`) — any model returning classification scores: masked copies of the inputs.
* [`EmbeddingViews`] (`embedding_views`) — generative vision-language models: views on the merged input embeddings
  in one forward (built for a model by `synib_hf.models.vlm.embedding_views`).

Every builder has `name`, `own_columns` (batch columns it reads that are not model inputs), `check(model, batch,
labels) → Task` for the first batch, `__call__(model, inputs, training, run_view=None, num_items_in_batch=None) →
Views`, and `state_dict()` / `load_state_dict()` (fill statistics, saved with every checkpoint).
"""

from .embedding_views import EmbeddingViews
from .input_views import DEFAULT_MODALITY_KEYS, VIEW_BATCHING, InputViews
from .native_views import NativeViews


__all__ = ["DEFAULT_MODALITY_KEYS", "VIEW_BATCHING", "EmbeddingViews", "InputViews", "NativeViews"]
