"""Creatives: render a product for a prompt and publish it with its provenance
(``render``), published creatives in memory (``records``), pools of creatives (``pool``),
outfits (``outfit``)."""
