"""The built-in synthetic egocentric benchmark, written in EPIC-KITCHENS-100 layout.

Classes are verb x noun. A noun is (shape, material): rgb shows the shape (colour is random, so it
says nothing), audio hears the material, so neither alone names the noun. A verb is (motion,
rhythm): rgb and flow see the motion; audio hears the rhythm, which two verbs always share. So every
modality informs alone and none suffices; the degradations (blur, low light, occlusion, camera
shake, background noise at a random SNR) make each modality unreliable on some clips.

Splits: train and validation (EPIC_100_train.csv / EPIC_100_validation.csv, disjoint videos) and
`pretrain` (KARMMA_pretrain.csv): a larger pool with its own participants, videos and seed stream
that stands for the large data real feature extractors are pre-trained on, so a teacher built on
extractors pre-trained there knows more than a student trained on `train` alone.
"""
