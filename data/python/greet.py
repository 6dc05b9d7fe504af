def greet(name):
    # say hello
    msg = f"hi {name}!"
    return msg.upper()
