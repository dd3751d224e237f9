"""saljax: can saliency maps be trusted to localize abnormalities in medical images?"""
__version__ = "0.1.0"
