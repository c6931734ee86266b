"""The model files: where they are (assets), fetching them (downloads), and the random
test models in the published layouts (testmodels, test_face_models)."""
