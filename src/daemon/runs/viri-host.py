"""The host of a Viri script, run by fussyd in a child python3:

    python3 viri-host.py SCRIPT BASE|"" CTX.json RESULT.json

As Viri's virid did: the script must define `class ViriScript` with `run(self, *args)`; with a
stored `__base__.py`, its ViriScript is a second base class (the script's members win), and the
context (`data_dir`, `conf`) wins over both. run(*args)'s value goes to RESULT.json as JSON (its
repr() when JSON cannot hold it), or the error and its traceback; never to stdout, which stays
the script's own. Exit status 0 when run() returned, 1 when it raised, 2 for a script Viri
would refuse (the messages are Viri's).
"""
import importlib.util
import json
import sys
import traceback


class Refused(Exception):
    pass


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise Refused('File is not a Python script')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def finish(result_path, result, status):
    with open(result_path, 'w') as f:
        json.dump(result, f)
    sys.exit(status)


def main():
    script, base, ctx_path, result_path = sys.argv[1:5]
    with open(ctx_path) as f:
        ctx = json.load(f)
    try:
        bases = []
        if base:
            base_mod = load(base, '__base__')
            if not hasattr(base_mod, 'ViriScript'):
                raise Refused('Base script does not have a ViriScript class')
        mod = load(script, 'viri_script')
        if not hasattr(mod, 'ViriScript'):
            raise Refused('Script does not have a ViriScript class')
        bases.append(mod.ViriScript)
        if base and base_mod.ViriScript is not mod.ViriScript:
            bases.append(base_mod.ViriScript)
        cls = type('ViriScript', tuple(bases), {'data_dir': ctx['dataDir'], 'conf': ctx.get('conf', {})})
        if not callable(getattr(cls, 'run', None)):
            raise Refused('ViriScript class does not have a run method')
        value = cls().run(*ctx.get('args', []))
    except Refused as e:
        finish(result_path, {'ok': False, 'error': str(e)}, 2)
    except Exception as e:
        finish(result_path, {'ok': False, 'error': '%s: %s' % (type(e).__name__, e), 'stack': traceback.format_exc()}, 1)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    finish(result_path, {'ok': True, 'value': json.loads(text)}, 0)


main()
