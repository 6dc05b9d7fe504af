int n = strlen(s);
if (n > 0) {
    puts(s);
}
