from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def version():
    for line in (HERE / "autotask" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("no __version__")


setup(
    name="autotask",
    version=version(),
    description="Background tasks for Django that need nothing but the project's database.",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=find_packages(include=["autotask", "autotask.*"]),
    include_package_data=True,
    python_requires=">=3.11",
    install_requires=["Django>=5.2"],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "psycopg2": ["psycopg2-binary>=2.9"],
        "mysql": ["mysqlclient>=2.2"],
        "django-tasks": ["django-tasks>=0.12"],
        "setproctitle": ["setproctitle>=1.3"],  # the worker's process title names it
        "dev": [
            "pytest>=8",
            "pytest-django>=4.9",
            "hypothesis>=6",
            "gunicorn>=22",  # the supervisor's pre-fork server tests
            "selenium>=4.20",  # the admin's browser test (with Debian's chromium + chromium-driver)
            "ruff>=0.6",
            "docutils>=0.20",  # make lint: the README and the changelog must render
            "tox>=4",
            "cronsim>=2.6",
            "pytz",  # pytz zones are accepted where users pass time zones
            "setproctitle>=1.3",  # the worker's process title test
        ],
    },
    classifiers=[
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "License :: OSI Approved :: MIT License",
    ],
)
