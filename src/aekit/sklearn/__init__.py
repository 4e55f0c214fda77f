"""scikit-learn estimators: any aekit model as a transformer or an outlier detector on tabular data.

:class:`AutoencoderTransformer` learns a code of ``n_components`` numbers per sample (``transform``),
decodes codes back to data (``inverse_transform``) and scores samples (``score_samples``, higher =
more normal). :class:`AutoencoderOutlierDetector` flags the samples whose anomaly score (the one
``aekit score --score auto`` picks for the model) lies above the ``1 - contamination`` quantile of
the scores of the data it was fitted on; it also carries PyOD's attributes (``decision_scores_``,
``labels_``, ``threshold_``).

Both build on the library, not on run directories: a :class:`aekit.config.RunConfig` from the
parameters, :func:`aekit.models.build_model`, :class:`aekit.training.Trainer` and
:mod:`aekit.evaluation.scores`. Features are standardised inside the estimator (``mean_``,
``scale_``), a seeded fraction of the data picks the best epoch, and a fitted estimator pickles like
every scikit-learn estimator (run directories, by contrast, never hold a pickle). docs/sklearn.md
has the parameters, the sign conventions and the estimator checks they pass. The modules:
:mod:`aekit.sklearn.base` (what both share), :mod:`aekit.sklearn.transformer`, :mod:`aekit.sklearn.detector`.
"""

from aekit.sklearn.detector import AutoencoderOutlierDetector
from aekit.sklearn.transformer import AutoencoderTransformer

__all__ = ["AutoencoderOutlierDetector", "AutoencoderTransformer"]
