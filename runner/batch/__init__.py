"""``flowrun batch``: one workflow over many inputs, each input an ordinary run."""
