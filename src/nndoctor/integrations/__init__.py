"""The doctor inside training frameworks, as their own callbacks.

- :mod:`nndoctor.integrations.lightning`: ``DoctorCallback`` for PyTorch Lightning's ``Trainer``
  (extra ``nndoctor[lightning]``);
- :mod:`nndoctor.integrations.transformers`: ``DoctorCallback`` for Hugging Face's ``Trainer``
  (extra ``nndoctor[transformers]``).

Both find the trained model and its optimizer through the same global hooks as
``nndoctor run`` (:class:`nndoctor.runner.GlobalWatcher`), say live alerts, and print the report
when training ends, fails or is interrupted; under several processes rank 0 alone reports.
"""
