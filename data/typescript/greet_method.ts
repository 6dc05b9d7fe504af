private greet(name: string): string {
  return `hi ${name}`;
}
