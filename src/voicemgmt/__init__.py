"""Voice Management: a self-hostable cloud contact-center platform built for CRM integration."""

__version__ = "0.1.0"
