"""Where executions live: checkpoint savers and execution stores, one module per backend."""
